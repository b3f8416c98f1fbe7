"""What evaluation costs at each recipe's default settings, as a share of training time.

For each recipe (default config, one thread unless --threads): seconds per training step
(mean of --steps after 2 warm-up steps), seconds of one `evaluate()` (the first call, which may
train and cache a feature network, and a second call, the steady cost), and the share of a
default run spent evaluating:

    evaluations = max_steps // eval_every (+1 final evaluation when the last step is not one)
    share = evaluations * eval_seconds / (max_steps * step_seconds + evaluations * eval_seconds)

    python benchmarks/eval_cost.py [--recipes classifier,gan-curve,...] [--steps 10] [--threads 1]

The target (issue 11.11) is a share of at most 10% for every recipe at its defaults.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from genlab.api import build_config
from genlab.recipes import get_recipe

RECIPES = "classifier,gan-curve,gan-mlp,dcgan,cgan,cyclegan,autoencoder,vae,diffusion,lstm-lm,gpt"


def measure(name: str, steps: int) -> dict:
    cls = get_recipe(name)
    cfg = build_config(cls, overrides={"device": "cpu"})
    r = cls(cfg, torch.device("cpu"))
    r.setup(training=True)
    r.optimizers = r.build_optimizers()
    r.set_mode(True)
    for i in range(2):
        r.training_step(r.batch(i), i + 1)
    t = time.perf_counter()
    for i in range(2, 2 + steps):
        r.training_step(r.batch(i), i + 1)
    step = (time.perf_counter() - t) / steps
    evals = []
    for _ in range(2):
        t = time.perf_counter()
        with r.eval_mode():
            r.evaluate()
        evals.append(time.perf_counter() - t)
    n_eval = (cfg.max_steps // cfg.eval_every if cfg.eval_every else 0)
    n_eval += 0 if cfg.eval_every and cfg.max_steps % cfg.eval_every == 0 else 1
    train = cfg.max_steps * step
    return {"recipe": name, "max_steps": cfg.max_steps, "eval_every": cfg.eval_every, "step_s": step,
            "eval_first_s": evals[0], "eval_s": evals[1], "evaluations": n_eval,
            "share": n_eval * evals[1] / (train + n_eval * evals[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default=RECIPES)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.recipes.split(","):
        m = measure(name, args.steps)
        rows.append(f"| {name} | {m['max_steps']} | {m['eval_every'] or 'end only'} | {m['step_s']:.3f} | "
                    f"{m['eval_s']:.2f} (first {m['eval_first_s']:.1f}) | {m['evaluations']} | {100 * m['share']:.1f}% |")
        print(rows[-1], file=sys.stderr, flush=True)
    print("| recipe | max_steps | eval_every | s / step | s / evaluation | evaluations | share of the run |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
