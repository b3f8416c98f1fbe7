"""Benchmark: the `musegan` recipe on the JSB chorales (../shared/data/music/jsb_chorales_16th.json).

Data: the file's train split (229 chorales), four voices as four tracks, 2-bar segments of 16
sixteenth steps per bar, a new segment every bar. Reports
- the training data's MuseGAN statistics (empty-bar rate, used pitch classes per bar,
  qualified-note rate, tonal distance) and the test split's;
- the trained generator's statistics on `--samples` generated segments (fresh latents, not those
  of the evaluations that chose the checkpoint), against the targets
  (each within 15 % of the training data's, empty-bar rate <= 0.05), beside an untrained
  generator's;
- the share of `--parse` generated MIDI files that pretty_midi, music21 and mido read;
- wall time of the training run.

    .venv/bin/python benchmarks/musegan_jsb.py [--steps N] [--out DIR] [--set KEY=VALUE ...]
    .venv/bin/python benchmarks/musegan_jsb.py --run DIR     # score an existing run, no training

Prints a Markdown section for BENCHMARKS.md and writes the figures to benchmarks/results/musegan_jsb.json.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from jsb_run import DATA, add_run_args, train_or_reuse

import genlab
from genlab.metrics.music import music_stats, parse_rates
from genlab.recipes.musegan import load_rolls, segments, stat_gap

KEYS = ("empty_bar_rate", "pitch_classes_per_bar", "qualified_note_rate", "tonal_distance")
TOLERANCE = 0.15
MAX_EMPTY = 0.05
SEED = 2026   # latents of the scored segments: not the recipe's EVAL_SEED, whose samples chose the checkpoint


def data_stats(run: "genlab.api.Run") -> dict[str, dict[str, float]]:
    c = run.config
    train, held, _, _ = load_rolls(c)

    def seg(rolls: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([s for s in (segments(r, c.n_bars, c.steps_per_bar, 1) for r in rolls) if len(s)])

    return {"train": music_stats(seg(train), c.lowest), "test": music_stats(seg(held), c.lowest)}


def verdict(gen: dict[str, float], target: dict[str, float]) -> dict[str, bool]:
    out = {"empty_bar_rate": gen["empty_bar_rate"] <= MAX_EMPTY}
    for k in ("pitch_classes_per_bar", "qualified_note_rate"):
        out[k] = math.isfinite(gen[k]) and abs(gen[k] - target[k]) <= TOLERANCE * target[k]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_args(ap, out="/tmp/genlab-bench-musegan", which="best")
    ap.add_argument("--samples", type=int, default=2000, help="generated segments scored")
    ap.add_argument("--parse", type=int, default=100, help="generated MIDI files read back by both parsers")
    args = ap.parse_args()
    if not DATA.is_file():
        print(f"{DATA} not found; nothing to benchmark", file=sys.stderr)
        return 1
    bench = train_or_reuse("musegan", args)
    run, run_dir, seconds = bench.run, bench.dir, bench.seconds
    r = run.recipe
    stats = data_stats(run)
    with r.eval_mode():
        gen_rolls = r.generate_rolls(args.samples, SEED)
        base_rolls = r.generate_rolls(args.samples, SEED, r.untrained_generator())
    gen = music_stats(gen_rolls, r.config.lowest)
    base = music_stats(base_rolls, r.config.lowest)
    parse = parse_rates(r.to_midi(gen_rolls[:args.parse]))
    ok = verdict(gen, stats["train"])
    result = {"run": str(run_dir), "checkpoint": args.which, "steps": bench.steps,
              "seconds": seconds, "config": {k: v for k, v in vars(run.config).items() if k != "data"},
              "data_train": stats["train"], "data_test": stats["test"], "generated": gen, "untrained": base,
              "stat_gap": stat_gap(gen, stats["train"]), "untrained_stat_gap": stat_gap(base, stats["train"]),
              "parse": parse, "targets_met": ok, "samples": args.samples}
    out_json = Path(__file__).resolve().parent / "results" / "musegan_jsb.json"
    out_json.parent.mkdir(exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1, default=str) + "\n")

    print(f"### musegan on JSB chorales ({result['steps']} steps, {r.config.width} width, "
          f"{seconds / 60:.1f} min wall)\n" if seconds else "")
    print("| statistic | train data | test data | musegan | untrained | target met |")
    print("|---|---|---|---|---|---|")
    for k in KEYS:
        flag = {True: "yes", False: "**no**"}.get(ok.get(k), "—")
        print(f"| {k} | {stats['train'][k]:.3f} | {stats['test'][k]:.3f} | {gen[k]:.3f} | {base[k]:.3f} | {flag} |")
    print(f"| stat_gap (0 = data) | 0 | {stat_gap(stats['test'], stats['train']):.3f} | {result['stat_gap']:.3f} | "
          f"{result['untrained_stat_gap']:.3f} | |")
    print("\nparsed: " + ", ".join(f"{k[6:]} {v:.0%}" for k, v in parse.items())
          + f" of {min(args.parse, args.samples)} generated files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
