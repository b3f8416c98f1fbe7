"""som side by side with minisom: same data, grid, sigma, learning rate and decay.

    python benchmarks/learners_som.py [--dataset colours|digits] [--rows 20] [--cols 20]
                                      [--epochs 10] [--batch-size 32] [--out results.json]

Both maps see the same training vectors the same number of times (epochs x n_train samples)
with minisom's asymptotic decay of lr and sigma (x0 / (1 + t / (T/2))) and the same start
values. minisom updates after every sample (its num_iteration = epochs x n_train);
genlab's recipe updates after a batch of `batch_size` samples (T = steps), which is the
difference in algorithm. Both codebooks are scored by the same code on held-out vectors
(models/som.py): quantization error and topographic error (8-connected neighbours, as
minisom's rectangular topology); minisom's own numbers are printed as a cross-check.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import genlab
from genlab.models.som import SOM


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="colours", choices=["colours", "digits"])
    ap.add_argument("--rows", type=int, default=20)
    ap.add_argument("--cols", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--runs", default="/tmp/genlab-bench-som")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    from minisom import MiniSom

    torch.set_num_threads(1)
    over = {"dataset": a.dataset, "rows": a.rows, "cols": a.cols, "epochs": a.epochs, "batch_size": a.batch_size,
            "lr": a.lr, "threads": 1, "eval_every": 0, "save_every": 0}
    t0 = time.perf_counter()
    run = genlab.train("som", overrides=over, out=Path(a.runs) / f"{a.dataset}-b{a.batch_size}", progress=False)
    genlab_s = time.perf_counter() - t0
    r = run.recipe
    r.load_data_once()
    train, val = r.train_x, r.val_x
    sigma = r.config.start_sigma()
    ours = r.modules["model"]

    ms = MiniSom(a.rows, a.cols, train.shape[1], sigma=sigma, learning_rate=a.lr, random_seed=0)
    ms.random_weights_init(train.numpy())
    t0 = time.perf_counter()
    ms.train(train.numpy(), a.epochs * len(train), random_order=True)
    ms_s = time.perf_counter() - t0
    theirs = SOM(a.rows, a.cols, train.shape[1])
    theirs.codebook.data = torch.from_numpy(ms.get_weights().reshape(-1, train.shape[1]).astype(np.float32))

    res = {"dataset": a.dataset, "grid": [a.rows, a.cols], "sigma": sigma, "lr": a.lr, "epochs": a.epochs,
           "batch_size": a.batch_size, "n_train": len(train), "n_val": len(val),
           "genlab": {"quantization_error": ours.quantization_error(val), "topographic_error": ours.topographic_error(val),
                      "seconds": genlab_s},
           "minisom": {"quantization_error": theirs.quantization_error(val),
                       "topographic_error": theirs.topographic_error(val), "seconds": ms_s,
                       "own_quantization_error": float(ms.quantization_error(val.numpy())),
                       "own_topographic_error": float(ms.topographic_error(val.numpy()))}}
    print(f"| {a.dataset} {a.rows}x{a.cols} | held-out QE | held-out TE | train s |")
    print("|---|---|---|---|")
    for k in ("genlab", "minisom"):
        m = res[k]
        print(f"| {k} | {m['quantization_error']:.4f} | {m['topographic_error']:.4f} | {m['seconds']:.1f} |")
    m = res["minisom"]
    print(f"minisom's own: QE {m['own_quantization_error']:.4f}, TE {m['own_topographic_error']:.4f}")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2))
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    main()
