"""Seconds per training step at torch's default thread count, at one thread, and at genlab's
automatic choice (threads=0, engine/threads.py), per recipe, on the machine as it is or under
load this script makes itself.

    python benchmarks/threads.py [--recipes classifier,gan-mlp,...] [--steps 10] [--min-seconds 1]
                                 [--load 2] [--settle 70] [--out results.json]

Each (recipe, setting) runs in a fresh process (torch fixes some thread pools at first use):
it builds the recipe with its default config, sets the threads as `genlab train` does (for auto:
the step probe of engine.trainer.step_probe, whose seconds are recorded), takes 2 warm-up steps,
then times at least `--steps` training steps and at least `--min-seconds` (recipe.training_step
on its own batches, no evaluation or checkpoints). The settings are "torch default" (threads =
os.cpu_count(), what genlab did before threads=0 became automatic), "one" (threads=1) and "auto"
(what engine/threads.py chooses; the choice and its reason are recorded). Settings run
alternated per recipe so that a change in the machine's load hits them alike.
--load N starts N busy processes (pure-Python loops) for the duration and waits --settle seconds
first, so that the 1-minute load average (which auto reads) has seen them; the load average is
recorded per row. OMP_NUM_THREADS is removed from the children's environment (the setting under
test decides).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator

RECIPES = ("classifier,gan-curve,gan-pattern,gan-mlp,dcgan,cgan,cyclegan,autoencoder,vae,diffusion,gpt,lstm-lm,"
           "translation,clip,musegan,music-transformer,word2vec,rbm,som")

CHILD = r"""
import contextlib, io, json, os, sys, time, torch
from genlab.api import build_config, get_recipe
from genlab.engine.threads import configure_threads
from genlab.engine.trainer import step_probe
name, threads, steps, min_seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
cls = get_recipe(name)
cfg = build_config(cls, None, None, {"threads": threads, "device": "cpu"})
r = cls(cfg, torch.device("cpu"))
r.setup(training=True)
t = time.perf_counter()
err = io.StringIO()
with step_probe(r) if threads == 0 else contextlib.nullcontext() as step, contextlib.redirect_stderr(err):
    n = configure_threads(threads, step=step, announce=True)
probe = time.perf_counter() - t
r.optimizers = r.build_optimizers()
r.set_mode(True)
for i in range(2):
    r.training_step(r.batch(i), i + 1)
i, t0 = 2, time.perf_counter()
while i < 2 + steps or time.perf_counter() - t0 < min_seconds:
    r.training_step(r.batch(i), i + 1)
    i += 1
dt = (time.perf_counter() - t0) / (i - 2)
params = sum(p.numel() for m in r.train_modules.values() for p in m.parameters() if p.requires_grad)
print(json.dumps({"sec_per_step": dt, "steps": i - 2, "threads": n, "params": params, "probe_s": probe,
                  "choice": err.getvalue().strip(), "load": os.getloadavg()[0], "max_steps": cfg.max_steps}))
"""


def busy() -> None:
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


@contextmanager
def machine_load(processes: int, settle: float) -> Iterator[None]:
    """`processes` busy loops for the duration; waits `settle` seconds for the load average."""
    loaders = [mp.Process(target=busy, daemon=True) for _ in range(processes)]
    for p in loaders:
        p.start()
    time.sleep(settle if loaders else 0)
    try:
        yield
    finally:
        for p in loaders:
            p.terminate()


def child_env() -> dict[str, str]:
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    env.pop("OMP_NUM_THREADS", None)   # the setting under test decides
    return env


def run(recipe: str, threads: int, steps: int, min_seconds: float) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, recipe, str(threads), str(steps), str(min_seconds)],
                         env=child_env(), capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", default=RECIPES)
    ap.add_argument("--steps", type=int, default=10, help="timed steps, at least")
    ap.add_argument("--min-seconds", type=float, default=1.0, help="timed seconds, at least")
    ap.add_argument("--load", type=int, default=0, help="busy processes to start for the measurement")
    ap.add_argument("--settle", type=float, default=70.0, help="seconds to let the load average see --load")
    ap.add_argument("--settings", default="torch default,one,auto", help="which of the three to run")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    settings = {k: v for k, v in {"torch default": os.cpu_count() or 1, "one": 1, "auto": 0}.items()
                if k in args.settings.split(",")}
    results = []
    with machine_load(args.load, args.settle):
        for recipe in args.recipes.split(","):
            row = {"recipe": recipe}
            for label, threads in settings.items():
                row[label] = run(recipe, threads, args.steps, args.min_seconds)
                print(f"{recipe:>17} {label:>13}: {row[label]}", file=sys.stderr, flush=True)
            results.append(row)
            if args.out:   # after every recipe: a cut-off run keeps what it measured
                with open(args.out, "w") as f:
                    json.dump({"load_processes": args.load, "steps": args.steps, "results": results}, f, indent=1)
    print(f"\nmachine: {os.cpu_count()} CPUs; extra busy processes: {args.load}; at least {args.steps} steps "
          f"and {args.min_seconds:g} s timed\n")
    print("| recipe | parameters | s/step, torch default | s/step, one thread | s/step, auto (threads chosen) "
          "| one / auto | torch default / auto | auto's probe (s) | load avg (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in results:
        d, o, a = (row.get(k, {"error": "not run"}) for k in ("torch default", "one", "auto"))
        if any("error" in x for x in (d, o, a)):
            print(f"| {row['recipe']} | error: {d.get('error') or o.get('error') or a.get('error')} ||||||||")
            continue
        print(f"| {row['recipe']} | {a['params'] / 1e6:.2f}M | {d['sec_per_step']:.4f} ({d['threads']}) | "
              f"{o['sec_per_step']:.4f} | {a['sec_per_step']:.4f} ({a['threads']}) | "
              f"{o['sec_per_step'] / a['sec_per_step']:.2f}x | {d['sec_per_step'] / a['sec_per_step']:.2f}x | "
              f"{a['probe_s']:.2f} | {d['load']:.1f} / {o['load']:.1f} / {a['load']:.1f} |")
    print()
    for row in results:
        if "choice" in row.get("auto", {}):
            print(f"{row['recipe']}: {row['auto']['choice']}")


if __name__ == "__main__":
    main()
