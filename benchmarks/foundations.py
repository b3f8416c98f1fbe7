"""Benchmarks of the foundations issue: classifier CNN on MNIST, the toy GANs, default wall times.

    python benchmarks/foundations.py [--shared ../shared/data] [--threads 1] [--out benchmarks/results/foundations.json]

Each run is the CLI's own `genlab train` (in-process through genlab.train) with its default
config unless noted; wall time is measured around the whole call (data, training, eval, samples).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

import genlab


THREADS = 0


def timed(recipe: str, out: Path, overrides: dict | None = None, **kw) -> tuple[float, genlab.Run]:
    overrides = {**(overrides or {}), **({"threads": THREADS} if THREADS else {})}
    t0 = time.perf_counter()
    run = genlab.train(recipe, out=out, progress=False, overrides=overrides, **kw)
    return time.perf_counter() - t0, run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--out", default="benchmarks/results/foundations.json")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for every run (0 = each recipe's default)")
    args = ap.parse_args()
    global THREADS
    THREADS = args.threads
    mnist = Path(args.shared) / "images" / "mnist"
    results: dict = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                     "threads": torch.get_num_threads(), "load_avg_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # 1. CNN on MNIST: first 8,000 of t10k to train, last 2,000 held out (val_fraction 0.2 on IDX keeps order)
        secs, run = timed("classifier", tmp / "mnist", data=str(mnist),
                          overrides={"arch": "cnn", "max_steps": 1500, "eval_every": 500})
        results["classifier_cnn_mnist"] = {"seconds": secs, **run.evaluate()}
        # 2. default runs, exactly as `genlab train RECIPE`
        for recipe in ("classifier", "gan-curve", "gan-pattern"):
            secs, run = timed(recipe, tmp / recipe)
            best = genlab.load(run.path)  # what a user gets: the best checkpoint
            results[f"default_{recipe}"] = {"seconds": secs, "steps": run.result["step"], **best.evaluate()}
    results["load_avg_at_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
