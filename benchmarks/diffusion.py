"""Diffusion benchmark: sample quality vs sampling steps, guidance, training time, bf16.

    python benchmarks/diffusion.py [--runs DIR] [--n 200] [--threads 1] [--out results.json]
    python benchmarks/diffusion.py --cond-only --cond-run RUN --guidance 3   # score one run as it is

1. Trains the default unconditional run (procedural faces) into DIR/uncond unless it exists,
   and the default conditional run (conditional=true, attribute=glasses) into DIR/cond.
   Wall time is the trainer's own clock (metrics.jsonl).
2. FID/KID/precision/recall vs held-out faces (genlab's faces feature net), `--n` samples
   each, for: an untrained model (DDIM 50), DDPM over all T steps, DDIM 100/50/20/10 (eta 0),
   with seconds per image.
3. Conditional model: requested-attribute accuracy (attribute classifier) and FID at guidance
   scales 1, 3, 5 (DDIM 50).
4. bf16 autocast vs fp32: seconds per training step and loss over the same batches.
Prints a markdown table and writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open

import genlab
from genlab.recipes.diffusion import DiffusionRecipe, DiffusionSample


def last_train_time(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return max(r["time"] for r in rows if r.get("kind") == "train")


def ensure_run(path: Path, overrides: dict) -> genlab.api.Run:
    """Train the run unless it exists; wait for one still training elsewhere (its final samples
    are written last)."""
    while (path / "model.safetensors").is_file() and not (path / "samples" / "samples.png").is_file():
        time.sleep(30)
    if not (path / "model.safetensors").is_file():
        t0 = time.time()
        genlab.train("diffusion", overrides=overrides, out=path, progress=False)
        print(f"trained {path} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return genlab.load(path, device="cpu")


def row(name: str, m: dict) -> str:
    """One table row: FID with its 90% bootstrap interval and the real-vs-real floor at the same n;
    attribute accuracy (a non-face counts as a failure) with the face rate."""
    acc = (f"{100 * m['label_accuracy']:.1f}% ({100 * m['face_rate']:.0f}% faces)" if "face_rate" in m
           else f"{100 * m['label_accuracy']:.1f}%" if "label_accuracy" in m else "—")
    return (f"| {name} | {m['fid']:.2f} [{m['fid_lo']:.1f}, {m['fid_hi']:.1f}] | {m['fid_floor']:.2f} | "
            f"{m['kid']:.2f} ± {m['kid_std']:.2f} | {m['kid_floor']:.2f} | {m['precision']:.3f} | "
            f"{m['recall']:.3f} | {acc} | {1000 * m['sec_per_image']:.1f} |")


HEADER = ("| model / sampler | FID [90% interval] | FID floor (real vs real, same n) | KID (raw MMD²) | KID floor "
          "| precision | recall | attribute acc. (face rate) | ms / image |\n|---|---|---|---|---|---|---|---|---|")


def bf16_check(run: genlab.api.Run, steps: int = 20) -> dict:
    """Same init, same batches: fp32 vs bf16 autocast training steps."""
    out = {}
    base = run.recipe
    for bf16 in (False, True):
        r = DiffusionRecipe(dataclasses.replace(base.config, bf16=bf16), "cpu")
        r.setup(training=True)
        r.optimizers = r.build_optimizers()
        r.set_mode(True)
        r.training_step(r.batch(0), 1)  # warm-up (allocations, kernels)
        t0, losses = time.time(), []
        for i in range(1, steps + 1):
            losses.append(r.training_step(r.batch(i), i + 1)["loss"])
        out["bf16" if bf16 else "fp32"] = {"sec_per_step": (time.time() - t0) / steps,
                                          "mean_loss": sum(losses) / len(losses)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="runs/bench-diffusion")
    ap.add_argument("--n", type=int, default=100, help="samples per FID/KID")
    ap.add_argument("--n-ddpm", type=int, default=32, help="samples for DDPM over all T steps (and its paired DDIM 50 row)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    ap.add_argument("--out", default="")
    ap.add_argument("--skip-ddpm", action="store_true")
    ap.add_argument("--cond-only", action="store_true", help="only the conditional model's guidance rows")
    ap.add_argument("--cond-run", default="", help="score this conditional run's last checkpoint as it is "
                    "(e.g. a stopped run) instead of training or waiting for DIR/cond")
    ap.add_argument("--guidance", default="1,3,5", help="guidance scales of the conditional rows")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs = Path(args.runs)
    results: dict = {"n": args.n, "n_ddpm": args.n_ddpm, "threads": args.threads}

    rows: list[str] = []
    if not args.cond_only:
        uncond = unconditional_rows(runs, args, results, rows)

    cond_dir = Path(args.cond_run) if args.cond_run else runs / "cond"
    if args.cond_run:
        cond = genlab.load(cond_dir, which="last", device="cpu")
    else:
        cond = ensure_run(cond_dir, {"conditional": True})
    results["train_seconds_cond"] = last_train_time(cond_dir)
    results["cond_run"] = str(cond_dir)
    with safe_open(str(cond_dir / "model.safetensors"), framework="pt") as f:
        results["cond_checkpoint_step"] = int((f.metadata() or {}).get("step", 0))
    print(f"conditional run {cond_dir}: checkpoint of step {results['cond_checkpoint_step']}", file=sys.stderr)
    rc = cond.recipe
    rc.load_data_once()
    for g in (float(v) for v in args.guidance.split(",")):
        with rc.eval_mode():
            m = rc.sample_quality(DiffusionSample(sampler="ddim", steps=50, eta=1.0, guidance=g, strip=0), args.n)
        results[f"cond_guidance{g:g}"] = m
        rows.append(row(f"conditional (glasses), guidance {g:g}, DDIM 50 eta=1, n={args.n}", m))
        print(rows[-1], file=sys.stderr, flush=True)
    print(HEADER)
    print("\n".join(rows))
    if not args.cond_only:
        results["bf16"] = b = bf16_check(uncond)
        print(f"\ntraining: uncond {results['train_seconds_uncond']:.0f} s, cond {results['train_seconds_cond']:.0f} s; "
              f"fp32 {b['fp32']['sec_per_step']:.3f} s/step (loss {b['fp32']['mean_loss']:.4f}), "
              f"bf16 {b['bf16']['sec_per_step']:.3f} s/step (loss {b['bf16']['mean_loss']:.4f})")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


def unconditional_rows(runs: Path, args: argparse.Namespace, results: dict, rows: list[str]) -> genlab.api.Run:
    uncond = ensure_run(runs / "uncond", {})
    results["train_seconds_uncond"] = last_train_time(runs / "uncond")
    r = uncond.recipe
    r.load_data_once()
    # untrained: the same config, freshly initialised weights
    fresh = DiffusionRecipe(r.config, "cpu")
    fresh.setup(training=True)
    fresh.set_mode(False)
    with fresh.eval_mode():
        m = fresh.sample_quality(DiffusionSample(sampler="ddim", steps=50, eta=1.0, strip=0), args.n)
    results["untrained_ddim50"] = m
    rows.append(row(f"untrained, DDIM 50 eta=1, n={args.n}", m))

    T = r.config.timesteps
    # DDPM over all T steps costs T forwards per image: it gets fewer samples, and a DDIM 50
    # row with the same count so its FID (biased by the sample count) has a fair partner.
    settings = [] if args.skip_ddpm else [("ddpm", T, 1.0, args.n_ddpm), ("ddim", 50, 0.0, args.n_ddpm)]
    settings += [("ddim", s, 1.0, args.n) for s in (100, 50, 20, 10)] + [("ddim", s, 0.0, args.n) for s in (50, 10)]
    for sampler, steps, eta, n in settings:
        with r.eval_mode():
            m = r.sample_quality(DiffusionSample(sampler=sampler, steps=steps, eta=eta, strip=0), n)
        name = (f"DDPM {steps} (all)" if sampler == "ddpm" else f"DDIM {steps}, eta={eta:g}") + f", n={n}"
        results[f"{sampler}{steps}_eta{eta:g}_n{n}"] = m
        rows.append(row(name, m))
        print(rows[-1], file=sys.stderr, flush=True)
    return uncond


if __name__ == "__main__":
    main()
