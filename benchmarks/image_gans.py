"""Benchmark of the image GAN recipes (gan-mlp, dcgan, cgan, cyclegan) on their embedded defaults.

For each recipe: wall time of the default training run on this machine, then the recipe's
metrics (FID/KID/precision/recall against held-out images with genlab's feature net; cgan:
share of samples showing the requested attribute at label 0 and 1; cyclegan: target
attribute flipped, other attributes preserved, round-trip L1) next to the same metrics of
the untrained generator (same seed, same code path: the baseline the training must beat).
With --bf16, also the time of a few training steps with bf16 autocast vs float32 (the peer).

    python benchmarks/image_gans.py                                # all four, defaults
    python benchmarks/image_gans.py --recipes cgan --set max_steps=500 --out /tmp/b

Results go to OUT/RECIPE.json and a markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import genlab
from genlab.api import build_config
from genlab.engine.rundir import RunDir
from genlab.recipes import get_recipe

KEYS = ("fid", "fid_lo", "fid_hi", "fid_floor", "kid", "kid_floor", "n_fake", "n_real", "precision", "recall",
        "attribute_acc", "attribute_acc_label0", "attribute_acc_label1", "face_rate", "face_rate_label0",
        "face_rate_label1", "flipped", "preserved", "cycle_l1", "paired_l1", "fid_AtoB", "fid_BtoA",
        "fid_floor_AtoB", "fid_floor_BtoA", "n_fake_AtoB", "n_real_AtoB", "face_rate_AtoB", "face_rate_BtoA")


def untrained_metrics(name: str, overrides: dict) -> dict[str, float]:
    cls = get_recipe(name)
    r = cls(build_config(cls, overrides={**overrides, "device": "cpu"}), "cpu")
    r.setup(training=True)
    with r.eval_mode():
        return r.evaluate()


def step_seconds(name: str, overrides: dict, bf16: bool, steps: int = 6) -> float:
    cls = get_recipe(name)
    r = cls(build_config(cls, overrides={**overrides, "device": "cpu", "bf16": bf16}), "cpu")
    r.setup(training=True)
    r.optimizers = r.build_optimizers()
    r.set_mode(True)
    r.training_step(r.batch(0), 1)  # warm-up
    t = time.perf_counter()
    for i in range(1, steps + 1):
        r.training_step(r.batch(i), i + 1)
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="gan-mlp,dcgan,cgan,cyclegan")
    ap.add_argument("--out", default="bench-image-gans")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every recipe run")
    ap.add_argument("--reuse", action="store_true", help="evaluate OUT/run-RECIPE if it already holds a run")
    ap.add_argument("--bf16", action="store_true", help="also time training steps with bf16 autocast vs fp32")
    args = ap.parse_args()
    overrides = dict(s.split("=", 1) for s in args.sets)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.recipes.split(","):
        res: dict = {"recipe": name, "overrides": overrides, "threads": torch.get_num_threads()}
        res["untrained"] = untrained_metrics(name, overrides)
        run_dir = out / f"run-{name}"
        if args.reuse and (run_dir / "model.safetensors").is_file():
            # a finished default run (e.g. trained with eval_every for progress): its own clock
            run = genlab.load(run_dir, which="last", device="cpu")
            rows = [r for r in RunDir(run_dir).read_metrics() if r.get("kind") == "train"]
            res["train_seconds"], res["steps"], res["reused"] = rows[-1]["time"], rows[-1]["step"], str(run_dir)
        else:
            t = time.time()
            run = genlab.train(name, out=run_dir, overrides={**overrides, "device": "cpu"}, progress=False)
            res["train_seconds"] = round(time.time() - t, 1)
            res["steps"] = run.result.get("step")
        res["trained"] = run.evaluate()
        if args.bf16:
            res["step_seconds_fp32"] = step_seconds(name, overrides, False)
            res["step_seconds_bf16"] = step_seconds(name, overrides, True)
        (out / f"{name}.json").write_text(json.dumps(res, indent=1))
        print(f"\n### {name}: {res['steps']} steps in {res['train_seconds']} s")
        print("| metric | untrained | trained |\n|---|---|---|")
        for k in KEYS:
            if k in res["trained"]:
                print(f"| {k} | {res['untrained'].get(k, float('nan')):.4g} | {res['trained'][k]:.4g} |")
        if args.bf16:
            print(f"step time fp32 {res['step_seconds_fp32']:.3f} s, bf16 {res['step_seconds_bf16']:.3f} s")


if __name__ == "__main__":
    main()
