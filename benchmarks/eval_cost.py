"""What evaluation costs in each recipe's default run, as a share of its wall time, and the
default run's estimated wall time.

For each recipe (default config; threads as `genlab train` sets them: the automatic choice with
its step probe unless --threads N): seconds per training step (at least --steps steps and
--min-seconds after 2 warm-up steps), and seconds of `evaluate()` as the trainer calls it:

    full      the run's config (the final evaluation, `genlab eval`), called twice: the first call
              also pays one-off costs (loading a feature network, untrained baselines); a feature
              network it trains and caches (once per machine) is left out of the shares
    estimate  engine.config.estimate_config(config) (evaluations before the last step), called
              twice, when the recipe declares cheaper periodic_eval settings

A default run evaluates every `eval_every` steps before the last (periodic: estimates) and once
at the end (final: full; plus one estimate when early stopping judged estimates before), so

    after   = one-off costs + periodic * estimate + full (+ estimate for early stopping)
    before  = one-off costs + (periodic + 1) * full            (every evaluation full, until 2026-11-30)
    wall    = max_steps * s/step + after
    share   = after / wall

    python benchmarks/eval_cost.py [--recipes classifier,gan-curve,...] [--steps 10] [--threads 0]
                                   [--load 2 --settle 70] [--out results.json]

The target (issue 11.11) is a share of at most 10% for every recipe at its defaults. --load N
runs the measurement beside N busy processes (benchmarks/threads.py's machine_load).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time

import torch

from genlab.api import build_config
from genlab.engine.config import estimate_config
from genlab.engine.threads import configure_threads
from genlab.engine.trainer import step_probe
from genlab.metrics import feature_net
from genlab.recipes import get_recipe

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from threads import machine_load  # noqa: E402  (benchmarks/threads.py)

RECIPES = ("classifier,gan-curve,gan-pattern,gan-mlp,dcgan,cgan,cyclegan,autoencoder,vae,diffusion,gpt,lstm-lm,"
           "translation,clip,musegan,music-transformer,word2vec,rbm,som")


def timed_evaluate(r, config) -> float:
    full, r.config = r.config, config
    try:
        t = time.perf_counter()
        with r.eval_mode():
            r.evaluate()
        return time.perf_counter() - t
    finally:
        r.config = full


def measure(name: str, steps: int, min_seconds: float, threads: int) -> dict:
    cls = get_recipe(name)
    cfg = build_config(cls, overrides={"device": "cpu", "threads": threads})
    r = cls(cfg, torch.device("cpu"))
    r.setup(training=True)
    err = io.StringIO()
    with step_probe(r) if threads == 0 else contextlib.nullcontext() as step, contextlib.redirect_stderr(err):
        n_threads = configure_threads(threads, step=step, announce=True)
    r.optimizers = r.build_optimizers()
    r.set_mode(True)
    for i in range(2):
        r.training_step(r.batch(i), i + 1)
    i, t = 2, time.perf_counter()
    while i < 2 + steps or time.perf_counter() - t < min_seconds:
        r.training_step(r.batch(i), i + 1)
        i += 1
    step_s = (time.perf_counter() - t) / (i - 2)

    cheap = estimate_config(cfg)
    periodic = (cfg.max_steps - 1) // cfg.eval_every if cfg.eval_every else 0
    cached = set(feature_net.cache_dir().glob("*"))
    full_first, full = timed_evaluate(r, cfg), timed_evaluate(r, cfg)
    # a feature network trained and cached by the first call is a cost once per machine, not per run
    machine_once = set(feature_net.cache_dir().glob("*")) != cached
    one_off = 0.0 if machine_once else max(0.0, full_first - full)
    est_first = est = full
    if cheap != cfg and periodic:
        est_first, est = timed_evaluate(r, cheap), timed_evaluate(r, cheap)
        one_off += max(0.0, est_first - est)
    judged = est if cheap != cfg and periodic and cfg.early_stop_metric else 0.0
    after = one_off + periodic * est + full + judged
    before = one_off + (periodic + 1) * full
    train = cfg.max_steps * step_s
    return {"recipe": name, "threads": n_threads, "choice": err.getvalue().strip(), "max_steps": cfg.max_steps,
            "eval_every": cfg.eval_every, "step_s": step_s, "periodic": periodic, "full_first_s": full_first,
            "full_s": full, "machine_once": machine_once, "estimate_first_s": est_first, "estimate_s": est, "estimate_differs": cheap != cfg,
            "eval_after_s": after, "eval_before_s": before, "train_s": train,
            "share_after": after / (train + after), "share_before": before / (train + before),
            "wall_min": (train + after) / 60, "load": os.getloadavg()[0]}


def row(m: dict) -> str:
    est = f"{m['estimate_s']:.2f}" if m["estimate_differs"] and m["periodic"] else "= full"
    once = ", trained the metrics' feature net: once per machine" if m["machine_once"] else ""
    return (f"| {m['recipe']} | {m['threads']} | {m['max_steps']} | {m['eval_every'] or 'end only'} | "
            f"{m['step_s']:.4f} | {m['full_s']:.2f} (first {m['full_first_s']:.2f}{once}) | {est} | "
            f"{m['periodic']} + 1 | {100 * m['share_before']:.1f}% | **{100 * m['share_after']:.1f}%** | "
            f"{m['wall_min']:.1f} | {m['load']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default=RECIPES)
    ap.add_argument("--steps", type=int, default=10, help="timed training steps, at least")
    ap.add_argument("--min-seconds", type=float, default=1.0, help="timed training seconds, at least")
    ap.add_argument("--threads", type=int, default=0, help="0 = the automatic choice, as genlab train")
    ap.add_argument("--load", type=int, default=0, help="busy processes to start for the measurement")
    ap.add_argument("--settle", type=float, default=70.0, help="seconds to let the load average see --load")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    head = ("| recipe | threads | max_steps | eval_every | s / step | s / full evaluation | s / estimate | "
            "evaluations (periodic + final) | share before | share now | est. default run (min) | load |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows, results = [], []
    with machine_load(args.load, args.settle):
        for name in args.recipes.split(","):
            try:
                m = measure(name, args.steps, args.min_seconds, args.threads)
            except Exception as e:  # one broken recipe does not cost the others' measurements
                print(f"{name}: error: {e}", file=sys.stderr, flush=True)
                continue
            results.append(m)
            rows.append(row(m))
            print(rows[-1], "   ", m["choice"], file=sys.stderr, flush=True)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump({"load_processes": args.load, "results": results}, f, indent=1)
    print(f"machine: {os.cpu_count()} CPUs; extra busy processes: {args.load}\n")
    print(head)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
