"""The book's GPT (`gpt --preset book`: word tokens, 3 layers, 4 heads, 256 dims, 128 tokens of
context) trained on Anna Karenina: validation perplexity and wall time per epoch.

    python benchmarks/gpt_book_anna.py [--data ../shared/data/text/anna_karenina.txt] [--steps 600]
                                       [--threads N] [--work /tmp/gpt-book-bench] [--out results.json]

Trains for `--steps` optimizer steps (cosine schedule over those steps), evaluating on the whole
validation split (the last 10% of the book) every `--steps / 3` steps, then reports perplexity,
bits per character, the novelty of generated text, and seconds per epoch, an epoch being as
many windows of 128 tokens as the training split holds tokens (train tokens / (batch * 128)
steps); when --steps is less than an epoch the time per epoch is extrapolated from the
measured seconds per training step (evaluations excluded) and marked so.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared/data/text/anna_karenina.txt"))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--work", default="/tmp/gpt-book-bench")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    work = Path(a.work)
    out = work / "run"
    if out.exists():
        shutil.rmtree(out)
    work.mkdir(parents=True, exist_ok=True)
    every = max(1, a.steps // 3)
    cmd = [sys.executable, "-m", "genlab", "train", "gpt", "--preset", "book", "--data", str(Path(a.data).resolve()),
           "--out", str(out), "--no-progress", "--set", f"max_steps={a.steps}", "--set", f"eval_every={every}",
           "--set", "eval_tokens=0", "--set", "log_every=1", "--set", "novelty_samples=4",
           "--set", "novelty_tokens=200", "--set", f"save_every={a.steps}"]
    if a.threads:
        cmd += ["--set", f"threads={a.threads}"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    train = {r["step"]: r["time"] for r in rows if r["kind"] == "train"}
    evals = [r for r in rows if r["kind"] == "eval"]
    after_eval = {r["step"] + 1 for r in evals}
    dts = [train[s] - train.get(s - 1, 0.0) for s in train if s not in after_eval and s > 5]
    sec_per_step = statistics.mean(dts)
    meta = json.loads((out / "data" / "meta.json").read_text())
    cfg = json.loads(json.dumps(__import__("tomllib").loads((out / "config.toml").read_text())["config"]))
    steps_per_epoch = meta["train_tokens"] / (cfg["batch_size"] * cfg["block_size"])
    res = {
        "command": " ".join(cmd[1:]), "load_avg_end": os.getloadavg(), "steps": a.steps,
        "train_tokens": meta["train_tokens"], "val_tokens": meta["val_tokens"], "vocab_size": meta["vocab_size"],
        "steps_per_epoch": steps_per_epoch, "epochs_trained": a.steps / steps_per_epoch,
        "seconds_per_step": sec_per_step, "seconds_per_epoch": sec_per_step * steps_per_epoch,
        "seconds_per_epoch_is_extrapolated": a.steps < steps_per_epoch,
        "total_train_seconds": train[max(train)],
        "evals": evals,
    }
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
