"""What the two JSB chorale benchmarks (musegan_jsb.py, music_transformer_jsb.py) share: the data
file, their command-line options for a run, and training a fresh run or reusing one (`--run`)."""
from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import genlab

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "music" / "jsb_chorales_16th.json"


@dataclass
class BenchRun:
    run: "genlab.api.Run"
    dir: Path
    seconds: float | None      # wall time of training (this process's, or the trainer's clock of a reused run)
    steps: int | None          # the last logged training step


def add_run_args(ap: argparse.ArgumentParser, out: str, which: str) -> None:
    """--steps, --set, --out, --run and --which, with this benchmark's defaults."""
    ap.add_argument("--steps", type=int, default=0, help="training steps (0 = the recipe's default)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=out)
    ap.add_argument("--run", help="score this existing run directory instead of training")
    ap.add_argument("--which", default=which, choices=["best", "last"])


def train_or_reuse(recipe: str, args: argparse.Namespace) -> BenchRun:
    """Train `recipe` on DATA into a fresh --out (timed), or load --run as it is; then load it."""
    seconds = None
    if args.run:
        run_dir = Path(args.run)
    else:
        run_dir = Path(args.out)
        shutil.rmtree(run_dir, ignore_errors=True)
        sets = list(args.sets) + ([f"max_steps={args.steps}"] if args.steps else [])
        t0 = time.time()
        genlab.train(recipe, data=DATA, overrides=sets, out=run_dir, progress=False)
        seconds = time.time() - t0
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [x for x in rows if x.get("kind") == "train"]
    if seconds is None and train_rows:
        seconds = train_rows[-1]["time"]
    return BenchRun(genlab.load(run_dir, which=args.which), run_dir, seconds,
                    train_rows[-1]["step"] if train_rows else None)
