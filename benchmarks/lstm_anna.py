"""lstm-lm on Anna Karenina: the book's word-level LSTM, perplexity and time per epoch.

    python benchmarks/lstm_anna.py [--data ../shared/data/text/anna_karenina.txt] [--epochs 3]
                                   [--threads N] [--runs DIR] [--out results.json]

1. Trains `lstm-lm --preset book` (word tokens, full vocabulary, embedding 128, 3 LSTM layers
   of 128, dropout 0.2, windows of 100 words, 32 streams) for a whole number of epochs, an
   epoch being one pass over the training tokens (steps = epochs * windows per stream);
   evaluates on the whole validation split after every epoch (perplexity, bits per
   character) and reports the trainer's wall time per epoch.
2. Speed peer, in the same process: a bare PyTorch loop (the same model, optimizer, batches
   and carried state, no trainer) timed over the same number of steps; genlab's seconds per
   step are reported as a ratio to it.
3. bf16 autocast vs fp32: seconds per training step and the loss over the same batches.
4. A novelty report of ~2,000 generated characters against the training text.
Prints a markdown summary and writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import genlab
from genlab.recipes.lstm_lm import LSTMRecipe

REPO = Path(__file__).resolve().parents[1]


def train_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def recipe_for(data: Path, **over) -> LSTMRecipe:
    cfg = genlab.api.build_config(LSTMRecipe, preset="book", overrides={"device": "cpu", **over}, data=data)
    r = LSTMRecipe(cfg, "cpu")
    r.setup(training=True)
    r.optimizers = r.build_optimizers()
    r.set_mode(True)
    return r


def time_steps(r: LSTMRecipe, steps: int, start: int = 0) -> tuple[float, list[float]]:
    """Seconds per genlab training_step (after one warm-up step) and the losses."""
    r.training_step(r.batch(start), 1)
    t0, losses = time.perf_counter(), []
    for i in range(start + 1, start + 1 + steps):
        losses.append(r.training_step(r.batch(i), i + 1)["loss"])
    return (time.perf_counter() - t0) / steps, losses


def bare_loop(r: LSTMRecipe, steps: int) -> float:
    """The peer: the same model and batches in a plain PyTorch loop (state carried by hand)."""
    lm, opt, c = r.modules["lm"], r.optimizers["model"], r.config
    batches = [r.batch(i) for i in range(steps + 1)]
    state = None
    t0 = 0.0
    for i, b in enumerate(batches):
        if i == 1:
            t0 = time.perf_counter()
        if b["reset"]:
            state = None
        logits, state = lm(b["x"], state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.flatten(0, 1), b["y"].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), c.grad_clip)
        opt.step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "text" / "anna_karenina.txt"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--runs", default="runs/bench-lstm-anna")
    p.add_argument("--speed-steps", type=int, default=20)
    p.add_argument("--out", default="")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.is_file():
        sys.exit(f"corpus not found: {data}")

    # -- 1. the book's model for whole epochs -----------------------------------------------------
    probe = recipe_for(data)
    c = probe.config
    _, windows = probe.corpus.stream_layout("train", c.seq_len, c.batch_size)
    n_train, n_val = len(probe.corpus.train), len(probe.corpus.val)
    run_dir = Path(args.runs)
    if not (run_dir / "model.safetensors").is_file():
        genlab.train("lstm-lm", data=data, preset="book", out=run_dir, progress=False,
                     overrides={"device": "cpu", "max_steps": args.epochs * windows, "eval_every": windows,
                                "save_every": windows, "eval_tokens": 0, "novelty_chars": 2000, "log_every": 1})
    rows = train_rows(run_dir)
    evals = list({r["step"]: r for r in rows if r.get("kind") == "eval"}.values())  # one per step
    train_t = {r["step"]: r["time"] for r in rows if r.get("kind") == "train"}  # logged every step
    epochs = []
    prev_t = 0.0
    for k, e in enumerate(evals, 1):
        t = train_t[e["step"]]  # the trainer's clock at the end of the epoch's last step
        if t < prev_t:  # the clock restarts at 0 when a run is resumed
            prev_t = 0.0
        epochs.append({"epoch": k, "step": e["step"], "seconds": t - prev_t, "val_loss": e["val_loss"],
                       "perplexity": e["perplexity"], "bpc": e["bits_per_char"],
                       "novelty_longest_copy": e.get("longest_copy_chars"),
                       "novelty_word8": e.get("copied_word_8gram_share")})
        prev_t = t

    # -- 2. speed vs a bare loop; 3. bf16 --------------------------------------------------------------
    n = args.speed_steps
    fp32_s, fp32_loss = time_steps(recipe_for(data), n)
    genlab_s = fp32_s
    bare_s = bare_loop(recipe_for(data), n)
    bf16_s, bf16_loss = time_steps(recipe_for(data, bf16=True), n)

    # -- 4. novelty of a sample of the trained model ----------------------------------------------------
    run = genlab.load(run_dir, device="cpu")
    run.recipe.load_data_once()
    with run.recipe.eval_mode():
        novelty = run.recipe.novelty(2000)
        sample = run.sample(n=1, prompt="Anna said", max_new_tokens=60, seed=0).texts[0]

    result = {
        "corpus": str(data), "train_tokens": n_train, "val_tokens": n_val, "vocab": probe.tokenizer.vocab_size,
        "windows_per_epoch": windows, "threads": torch.get_num_threads(), "epochs": epochs,
        "sec_per_step": {"genlab": genlab_s, "bare_pytorch": bare_s, "fp32": fp32_s, "bf16": bf16_s},
        "bf16_loss_delta": [b - f for b, f in zip(bf16_loss, fp32_loss)][-5:],
        "novelty": {k: v for k, v in novelty.items()}, "sample": sample,
    }
    print(f"\ncorpus {data.name}: {n_train:,} train / {n_val:,} val word tokens, vocabulary {result['vocab']:,}, "
          f"{windows} steps per epoch (32 streams x 100 words), {result['threads']} threads\n")
    print("| epoch | wall time (s) | val loss | perplexity | bits/char | longest copy (chars) | word 8-grams in corpus |")
    print("|---|---|---|---|---|---|---|")
    for e in epochs:
        w8 = "—" if e["novelty_word8"] is None else f"{100 * e['novelty_word8']:.1f}%"
        print(f"| {e['epoch']} | {e['seconds']:.0f} | {e['val_loss']:.3f} | {e['perplexity']:.1f} | {e['bpc']:.3f} | "
              f"{e['novelty_longest_copy']:.0f} | {w8} |")
    print(f"\nsec/step: genlab {genlab_s:.3f}, bare PyTorch loop {bare_s:.3f} (ratio {genlab_s / bare_s:.2f}); "
          f"fp32 {fp32_s:.3f} vs bf16 autocast {bf16_s:.3f} (bf16/fp32 = {bf16_s / fp32_s:.2f}); "
          f"bf16-fp32 loss after {n} steps: {bf16_loss[-1] - fp32_loss[-1]:+.4f}")
    print(f"novelty (2,000 chars): longest copy {novelty['longest_copy_chars']} chars "
          f"({novelty['longest_copy'][:80]!r}), word 8-grams in corpus {100 * novelty['word_ngram_share']:.1f}%, "
          f"char 8-grams {100 * novelty['char_ngram_share']:.1f}%")
    print(f"sample: {sample!r}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
