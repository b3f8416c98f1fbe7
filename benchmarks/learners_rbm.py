"""rbm side by side with sklearn.neural_network.BernoulliRBM: same data, hidden size, lr, batch, epochs.

    python benchmarks/learners_rbm.py [--hidden 256] [--lr 0.05] [--batch-size 10] [--epochs 20]
                                      [--out results.json]

Data: the recipe's binarized scikit-learn digits (8x8, pixels > 0.5), its train / held-out
split (1,438 / 359). Both train PCD-1 with plain SGD (scikit-learn's algorithm: persistent
chains, hidden probabilities in the positive phase). Both models are scored by the same
code (models/rbm.py, scikit-learn's weights copied in): the exact pseudo-log-likelihood of
held-out images (every pixel, not scikit-learn's one-random-pixel estimate, which is also
shown), reconstruction error and an AIS estimate of the log-likelihood. Wall time of
training for both (genlab's through its trainer, with its checkpoint and logs).
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
from genlab.models.rbm import RBM


def scores(rbm: RBM, recipe, val: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        return {"pseudo_log_likelihood": float(rbm.pseudo_log_likelihood(val).mean()),
                "reconstruction_mse": float(rbm.reconstruction_error(val)),
                "ais_log_likelihood": float(-rbm.free_energy(val).mean()) - recipe.log_z(rbm)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--runs", default="/tmp/genlab-bench-rbm")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    from sklearn.neural_network import BernoulliRBM

    torch.set_num_threads(1)
    over = {"hidden": a.hidden, "lr": a.lr, "batch_size": a.batch_size, "epochs": a.epochs, "persistent": True,
            "k": 1, "threads": 1, "eval_every": 0, "save_every": 0, "fid_samples": 0}
    t0 = time.perf_counter()
    run = genlab.train("rbm", overrides=over, out=Path(a.runs) / "genlab", progress=False)
    genlab_s = time.perf_counter() - t0
    r = run.recipe
    r.load_data_once()
    train, val = r.train_v, r.val_v
    ours = scores(r.modules["model"], r, val)

    sk = BernoulliRBM(n_components=a.hidden, learning_rate=a.lr, batch_size=a.batch_size, n_iter=a.epochs,
                      random_state=0)
    t0 = time.perf_counter()
    sk.fit(train.numpy())
    sk_s = time.perf_counter() - t0
    theirs_rbm = RBM(train.shape[1], a.hidden)
    with torch.no_grad():
        theirs_rbm.W.copy_(torch.from_numpy(sk.components_.T.astype(np.float32)))
        theirs_rbm.b.copy_(torch.from_numpy(sk.intercept_visible_.astype(np.float32)))
        theirs_rbm.c.copy_(torch.from_numpy(sk.intercept_hidden_.astype(np.float32)))
    theirs = scores(theirs_rbm, r, val)
    theirs["sklearn_score_samples_mean"] = float(np.mean(sk.score_samples(val.numpy())))

    res = {"hidden": a.hidden, "lr": a.lr, "batch_size": a.batch_size, "epochs": a.epochs,
           "n_train": len(train), "n_val": len(val),
           "genlab": {**ours, "seconds": genlab_s}, "sklearn": {**theirs, "seconds": sk_s}}
    print("| model | held-out PLL (exact) | recon MSE | AIS log-lik (estimate) | train s |")
    print("|---|---|---|---|---|")
    for k in ("genlab", "sklearn"):
        m = res[k]
        print(f"| {k} | {m['pseudo_log_likelihood']:.3f} | {m['reconstruction_mse']:.4f} | "
              f"{m['ais_log_likelihood']:.3f} | {m['seconds']:.1f} |")
    print(f"sklearn's own score_samples (one random pixel x 64) mean: {theirs['sklearn_score_samples_mean']:.3f}")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2))
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    main()
