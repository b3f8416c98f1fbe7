"""Seconds per training step at torch's default thread count, at one thread, and at genlab's
automatic choice (threads=0, engine/threads.py), per recipe, on the machine as it is or under
load this script makes itself.

    python benchmarks/threads.py [--recipes classifier,gan-mlp,dcgan,cgan,vae,diffusion,gpt,lstm-lm]
                                 [--steps 20] [--load 2] [--out results.json]

Each (recipe, setting) runs in a fresh process (torch fixes some thread pools at first use):
it builds the recipe with its default config, takes 2 warm-up steps, then times `--steps`
training steps (recipe.training_step on its own batches, no evaluation or checkpoints). The
settings are "torch default" (threads = os.cpu_count(), what genlab did before threads=0 became
automatic), "one" (threads=1) and "auto" (what engine/threads.py chooses; the choice is printed).
--load N starts N busy processes (pure-Python loops) for the duration, for a loaded-machine
measurement on an otherwise quiet machine; the 1-minute load average is recorded per row.
Settings run alternated (round robin) so that a change in the machine's load hits them alike.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

RECIPES = "classifier,gan-mlp,dcgan,cgan,vae,diffusion,gpt,lstm-lm"

CHILD = r"""
import json, sys, time, torch
from genlab.api import build_config, get_recipe
from genlab.engine.threads import configure_threads
name, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cls = get_recipe(name)
cfg = build_config(cls, None, None, {"threads": threads, "device": "cpu"})
r = cls(cfg, torch.device("cpu"))
r.setup(training=True)
n = configure_threads(threads, r.modules)
r.optimizers = r.build_optimizers()
r.set_mode(True)
for i in range(2):
    r.training_step(r.batch(i), i + 1)
t0 = time.perf_counter()
for i in range(2, 2 + steps):
    r.training_step(r.batch(i), i + 1)
dt = (time.perf_counter() - t0) / steps
params = sum(p.numel() for m in r.train_modules.values() for p in m.parameters() if p.requires_grad)
print(json.dumps({"sec_per_step": dt, "threads": n, "params": params, "load": __import__("os").getloadavg()[0]}))
"""


def busy() -> None:
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def run(recipe: str, threads: int, steps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(os.path.dirname(__file__), "..", "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    env.pop("OMP_NUM_THREADS", None)   # the setting under test decides
    out = subprocess.run([sys.executable, "-c", CHILD, recipe, str(threads), str(steps)], env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", default=RECIPES)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--load", type=int, default=0, help="busy processes to start for the measurement")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    loaders = [mp.Process(target=busy, daemon=True) for _ in range(args.load)]
    for p in loaders:
        p.start()
    time.sleep(5 if loaders else 0)   # let the load average notice
    settings = {"torch default": os.cpu_count() or 1, "one": 1, "auto": 0}
    results = []
    try:
        for recipe in args.recipes.split(","):
            row = {"recipe": recipe}
            for label, threads in settings.items():
                row[label] = run(recipe, threads, args.steps)
                print(f"{recipe:>10} {label:>13}: {row[label]}", file=sys.stderr, flush=True)
            results.append(row)
    finally:
        for p in loaders:
            p.terminate()
    print(f"\nmachine: {os.cpu_count()} CPUs; extra busy processes: {args.load}; steps timed: {args.steps}\n")
    print("| recipe | parameters | s/step, torch default | s/step, one thread | s/step, auto (threads chosen) "
          "| default / auto | load avg (1 min) |")
    print("|---|---|---|---|---|---|---|")
    for row in results:
        d, o, a = row["torch default"], row["one"], row["auto"]
        if any("error" in x for x in (d, o, a)):
            print(f"| {row['recipe']} | error: {d.get('error') or o.get('error') or a.get('error')} |||||")
            continue
        print(f"| {row['recipe']} | {a['params'] / 1e6:.2f}M | {d['sec_per_step']:.3f} ({d['threads']}) | "
              f"{o['sec_per_step']:.3f} | {a['sec_per_step']:.3f} ({a['threads']}) | "
              f"{d['sec_per_step'] / a['sec_per_step']:.2f}x | {d['load']:.1f} / {o['load']:.1f} / {a['load']:.1f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"load_processes": args.load, "steps": args.steps, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
