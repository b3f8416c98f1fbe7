"""Benchmark: the `music-transformer` recipe on the JSB chorales (../shared/data/music/jsb_chorales_16th.json).

Data: the file's train split (229 chorales) played at the recipe's tempo (100 quarter notes per
minute, velocity 80) into the 390 performance events, pieces laid end to end; the test split
(77 chorales) is held out. Reports
- held-out negative log-likelihood per event (nats; every whole window of block_size events of
  the test split) of the trained model, beside a unigram model of the training events (add-one
  smoothed), an untrained model and the uniform distribution (ln 390);
- the MuseGAN statistics (empty-bar rate, pitch classes per bar, qualified-note rate) and the
  texture (notes per bar, pitch range, polyphony) of `--samples` decoded samples of `--events`
  events (after an end-of-piece token, temperature 1, top-p 0.95), one merged track on the
  16th-note grid in 2-bar segments, beside the held-out music cut into pieces of the same
  length and beside an untrained model's samples;
- the share of the decoded MIDI files that pretty_midi, music21 and mido read;
- wall time of the training run.

    .venv/bin/python benchmarks/music_transformer_jsb.py [--steps N] [--out DIR] [--set KEY=VALUE ...]
    .venv/bin/python benchmarks/music_transformer_jsb.py --run DIR     # score an existing run, no training

Prints a Markdown table for BENCHMARKS.md and writes benchmarks/results/music_transformer_jsb.json.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from jsb_run import DATA, add_run_args, train_or_reuse

from genlab.data.midi import Track, midi_bytes, write_midi
from genlab.metrics.music import parse_rates
from genlab.tokenizers.events import EOS, VOCAB_SIZE, decode_notes

KEYS = ("empty_bar_rate", "pitch_classes_per_bar", "qualified_note_rate", "notes_per_bar", "pitch_range",
        "polyphony")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_args(ap, out="/tmp/genlab-bench-music-transformer", which="last")
    ap.add_argument("--samples", type=int, default=16, help="decoded samples scored")
    ap.add_argument("--events", type=int, default=512, help="events per decoded sample")
    args = ap.parse_args()
    if not DATA.is_file():
        print(f"{DATA} not found; nothing to benchmark", file=sys.stderr)
        return 1
    bench = train_or_reuse("music-transformer", args)
    run_dir, seconds = bench.dir, bench.seconds
    r = bench.run.recipe
    c = r.config
    r.load_data_once()
    c.eval_windows = 0                                   # every whole held-out window
    with r.eval_mode():
        untrained = r.untrained_model()
        nll = {"trained": r.nll_per_event(r.modules["model"]), "unigram": r.unigram_nll(),
               "untrained": r.nll_per_event(untrained), "uniform": math.log(VOCAB_SIZE)}
        t0 = time.time()
        gens = r.continuations(args.samples, seed=0, prompt=[EOS], max_new=args.events, temperature=1.0, top_k=0,
                               top_p=0.95)
        sample_seconds = time.time() - t0
        base = r.continuations(args.samples, seed=0, prompt=[EOS], max_new=args.events, temperature=1.0, top_k=0,
                               top_p=0.95, model=untrained)
    notes = [decode_notes(g) for g in gens]
    stats = {"held-out": r.music_statistics(r.held_out_pieces(max(4 * args.samples, 64), args.events)),
             "trained": r.music_statistics(notes),
             "untrained": r.music_statistics([decode_notes(g) for g in base])}
    parse = parse_rates([midi_bytes(write_midi([Track(n)], tempo=c.tempo)) for n in notes])
    lengths = [len(g) for g in gens]
    n_params = sum(p.numel() for p in r.modules["model"].parameters())
    result = {"run": str(run_dir), "checkpoint": args.which, "steps": bench.steps,
              "seconds": seconds, "params": n_params, "torch_threads": torch.get_num_threads(),
              "config": {k: v for k, v in vars(c).items() if k != "data"}, "held_out_events": len(r.held_stream),
              "nll_per_event": nll, "stats": stats, "parse": parse, "samples": args.samples,
              "events_per_sample": args.events, "sample_lengths": lengths, "sampling_seconds": sample_seconds}
    out_json = Path(__file__).resolve().parent / "results" / "music_transformer_jsb.json"
    out_json.parent.mkdir(exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1, default=str) + "\n")

    if seconds:
        print(f"### music-transformer on JSB chorales ({result['steps']} steps, {n_params / 1e6:.2f} M parameters, "
              f"{seconds / 60:.1f} min wall)\n")
    print("| | trained | unigram | untrained | uniform |\n|---|---|---|---|---|")
    print("| held-out NLL per event (nats) | " + " | ".join(f"{nll[k]:.3f}" for k in nll) + " |")
    print(f"\n({len(r.held_stream)} held-out events; {args.samples} samples of up to {args.events} events, "
          f"mean {sum(lengths) / len(lengths):.0f}, decoded in {sample_seconds:.1f} s)\n")
    print("| statistic (2-bar segments) | held-out | trained | untrained |\n|---|---|---|---|")
    for k in KEYS:
        print(f"| {k} | " + " | ".join(f"{stats[g].get(k, float('nan')):.3f}" for g in stats) + " |")
    print("\nparsed: " + ", ".join(f"{k[6:]} {v:.0%}" for k, v in parse.items()) + f" of {len(notes)} decoded files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
