"""Multi30k English -> French with the translation recipe, under a wall-clock training budget.

Trains on `train` (29,000 pairs), keeps the checkpoint with the best greedy BLEU on the first
`--eval-sentences` pairs of `val` (evaluated and checkpointed every `--chunk` steps), then
scores that checkpoint with sacreBLEU + chrF on `test_2016_flickr` (greedy, then beam 4) and
on all of `val` (greedy). Training stops after `--minutes` of wall-clock time; the Noam
(inverse square root) schedule does not depend on a total number of steps, so a budget cut
leaves the learning rate where one long run would have it.

    python benchmarks/translation_multi30k.py --minutes 55 --threads 2 --out runs/mt-multi30k
    python benchmarks/translation_multi30k.py --minutes 40 --threads 1 --set n_enc=6 --set n_dec=6
    genlab average runs/mt-multi30k --last 5     # the script keeps the last 5 checkpoints
    python benchmarks/translation_multi30k.py --eval-only --which averaged --out runs/mt-multi30k

Prints the evaluations made during training, then a JSON summary after each score (also in
OUT/benchmark.json, with the translations beside it): training wall time, steps, BLEU and chrF,
the sacreBLEU signatures, and BLEU per CPU-hour (test greedy BLEU / (training hours x threads)).
`--eval-only --which last|averaged` scores another checkpoint of the run into
OUT/benchmark-WHICH.json (training time: the trainer's clock at that checkpoint's step);
`--scores` chooses which scores (e.g. `val:1` alone, to choose between averages on val).
"""
from __future__ import annotations

import _thread
import argparse
import json
import signal
import threading
import time
from pathlib import Path

import torch

import genlab
from genlab.engine.io import write_text
from genlab.metrics.bleu import corpus_bleu, corpus_chrf

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "translation" / "multi30k"

# The peer setting (d 256, 3 + 3 layers, joint BPE 8k, smoothing 0.1, ~6k-token batches),
# with Noam warm-up so that resuming chunk after chunk follows one schedule.
CONFIG = {"src": "en", "tgt": "fr", "vocab": "joint", "vocab_size": 8000, "max_len": 100, "max_tokens": 6000,
          "d_model": 256, "n_head": 8, "n_enc": 3, "n_dec": 3, "d_ff": 1024, "dropout": 0.1,
          "label_smoothing": 0.1, "optimizer": "adamw", "weight_decay": 0.01, "beta1": 0.9, "beta2": 0.98,
          "lr_schedule": "noam", "lr": 0.5, "warmup_steps": 400, "grad_clip": 1.0, "log_every": 20,
          "early_stop_metric": "val_bleu", "early_stop_mode": "max", "device": "cpu",
          "keep_checkpoints": 5}  # for `genlab average OUT --last N` afterwards


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default="runs/mt-multi30k")
    ap.add_argument("--minutes", type=float, default=55.0, help="training wall-clock budget")
    ap.add_argument("--chunk", type=int, default=200, help="steps between evaluations and checkpoints")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-sentences", type=int, default=300)
    ap.add_argument("--eval-only", action="store_true", help="score the run already in --out")
    ap.add_argument("--which", default="best", choices=["best", "last", "averaged"],
                    help="--eval-only: the checkpoint to score (averaged: run genlab average OUT first)")
    ap.add_argument("--scores", default="test_2016_flickr:1,val:1,test_2016_flickr:4",
                    help="SPLIT:BEAM pairs to score, in order (beam 1 = greedy)")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="KEY=VALUE config overrides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {**CONFIG, "threads": args.threads, "eval_every": args.chunk, "save_every": args.chunk,
                 "eval_sentences": args.eval_sentences, "max_steps": 1_000_000}
    overrides.update(dict(s.split("=", 1) for s in args.sets))
    out = Path(args.out)
    # The budget interrupts training (KeyboardInterrupt); the checkpoints of every chunk and the
    # best one by val BLEU are on disk by then.
    # A background job of a non-interactive shell starts with SIGINT ignored; the budget timer
    # interrupts through SIGINT, so restore Python's handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.which != "best" and not args.eval_only:
        ap.error("--which goes with --eval-only")
    scores = [(split, int(beam)) for split, beam in (x.split(":") for x in args.scores.split(","))]
    start = time.time()
    if not args.eval_only:
        timer = threading.Timer(args.minutes * 60, _thread.interrupt_main)
        timer.start()
        try:
            genlab.train("translation", data=args.data, overrides=overrides, out=out, progress=False)
        except KeyboardInterrupt:
            pass
        timer.cancel()
    rows = genlab.api.RunDir(out).read_metrics()
    steps = max(r["step"] for r in rows if r.get("kind") == "train")
    for r in rows:
        if r.get("kind") == "eval":
            print(json.dumps(r), flush=True)
    best_step = json.loads((out / "best" / "metrics.json").read_text())["step"]
    result = {"which": args.which}
    if args.which == "averaged":  # the newest of the averaged checkpoints decides the training time
        result["averaged_steps"] = json.loads((out / "averaged" / "averaged.json").read_text())["steps"]
        best_step = result["averaged_steps"][-1]
    elif args.which == "last":
        best_step = steps
    # --eval-only: the trainer's clock at the checkpoint (setup before step 1 not included)
    train_seconds = (max(r["time"] for r in rows if r.get("kind") == "train" and r["step"] <= best_step)
                     if args.eval_only else time.time() - start)
    run = genlab.load(out, which=args.which)  # best: the checkpoint with the best val BLEU
    torch.set_num_threads(args.threads)  # scoring uses --threads, not the threads of the run's config
    r = run.recipe
    # CPU-hours are the training's: with --eval-only, the threads the run was trained with
    threads = (r.config.threads or args.threads) if args.eval_only else args.threads
    result.update({"train_minutes": round(train_seconds / 60, 2), "steps_logged": steps, "best_step": best_step,
                   "threads": threads, "config": overrides})
    r.load_data_once()
    result["parameters"] = sum(p.numel() for p in r.modules["model"].parameters())
    # Scores one by one, each written as soon as it exists (a loaded machine can be slow).
    suffix = "" if args.which == "best" else f"-{args.which}"
    for split, beam in scores:
        t = time.time()
        src, ref = r.corpus.splits[split]
        with r.eval_mode():
            hyps = r.translate(src, beam, r.config.length_penalty, too_long="truncate")
        tag = f"{split}_{'greedy' if beam == 1 else f'beam{beam}'}"
        result[f"{tag}_bleu"], result["bleu_signature"] = corpus_bleu(hyps, ref)
        result[f"{tag}_chrf"], result["chrf_signature"] = corpus_chrf(hyps, ref)
        result[f"{tag}_minutes"] = round((time.time() - t) / 60, 2)
        if split == "test_2016_flickr" and beam == 1:
            result["bleu_per_cpu_hour"] = round(result[f"{tag}_bleu"] / (train_seconds / 3600 * threads), 2)
        write_text(out / f"translations-{tag}{suffix}.{r.config.tgt}", "".join(h + "\n" for h in hyps))
        write_text(out / f"benchmark{suffix}.json", json.dumps(result, indent=1))
        print(json.dumps({k: v for k, v in result.items() if k != "config"}), flush=True)


if __name__ == "__main__":
    main()
