"""Benchmark: the `vae` recipe on MNIST and the `autoencoder` recipe's default run.

VAE: MNIST from ../shared/data/images/mnist (the t10k file: first 8,000 images train, last
2,000 held out), preset `mnist` (Bernoulli likelihood, 16-d latent). Reports the held-out
negative ELBO (nats per image), reconstruction error, FID/KID/precision/recall of 2,000
prior samples against the 2,000 held-out images in genlab's digits feature space, the same
numbers for an untrained VAE, wall time, and the speed ratio of genlab's trainer against a
plain PyTorch loop running the same model on the same batches (named peer, same run).
Autoencoder: `genlab train autoencoder` with its defaults (dense 784-200-20 on sklearn
digits at 28x28): held-out reconstruction error and wall time. Also prints the face
attribute classifier's held-out accuracy (32 and 64 px) and the feature nets' versions.

    .venv/bin/python benchmarks/vae_mnist.py [--steps 2000] [--bf16] [--out /tmp/genlab-bench-vae]

Prints a Markdown section for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

import torch

import genlab
from genlab.metrics.feature_net import get_attribute_classifier, get_feature_net
from genlab.data.image_datasets import find_mnist


def _fmt(m: dict, keys: list[str]) -> str:
    return ", ".join(f"{k} {m[k]:.4g}" for k in keys if k in m)


def genlab_loop_seconds(steps: int, out: Path) -> float:
    """genlab's trainer for `steps` steps of the same preset: time logged at the last step
    (before the final evaluation and checkpoint)."""
    import json

    over = {"max_steps": steps, "eval_every": 0, "save_every": 0, "fid_samples": 0, "eval_images": 10,
            "log_every": steps}
    shutil.rmtree(out, ignore_errors=True)
    genlab.train("vae", preset="mnist", overrides=over, out=out, progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return max(r["time"] for r in rows if r.get("kind") == "train")


def plain_loop_seconds(recipe_cls: type, config, steps: int) -> float:
    """The same model, data, batches and optimizer in a bare PyTorch loop (no engine)."""
    from genlab.models.autoencoder import kl_divergence, reconstruction_nll

    r = recipe_cls(config, "cpu")
    r.setup(training=True)
    model = r.modules["model"].train()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    t0 = time.perf_counter()
    for i in range(steps):
        b = r.batch(i)
        raw, mu, logvar = model(b["x"], b["eps"])
        loss = (reconstruction_nll(raw, b["x"], config.loss_kind) + config.beta * kl_divergence(mu, logvar)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="VAE training steps (preset mnist: 2000)")
    ap.add_argument("--peer-steps", type=int, default=300, help="steps timed for the plain-loop peer")
    ap.add_argument("--bf16", action="store_true", help="also train the VAE with bf16 autocast")
    ap.add_argument("--out", default="/tmp/genlab-bench-vae")
    args = ap.parse_args()
    if find_mnist() is None:
        print("MNIST not found at ../shared/data/images/mnist; nothing to benchmark", file=sys.stderr)
        return 1
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    lines = [f"load average at start: {os.getloadavg()[0]:.1f}"]

    t = time.perf_counter()
    digits_net = get_feature_net("mnist", 28, 1)
    lines.append(f"digits feature net: {digits_net.version} (held-out accuracy {digits_net.accuracy['classes']:.4f}, "
                 f"{digits_net.meta['source']}; obtained in {time.perf_counter() - t:.1f} s, cached after first use)")

    runs = {}
    for tag, bf16 in [("fp32", False)] + ([("bf16", True)] if args.bf16 else []):
        over = {"max_steps": args.steps, "eval_every": 0, "save_every": 0, "fid_samples": 0, "bf16": bf16}
        t = time.perf_counter()
        run = genlab.train("vae", preset="mnist", overrides=over, out=out / f"vae-{tag}", progress=False)
        wall = time.perf_counter() - t
        run.recipe.config = dataclasses.replace(run.recipe.config, fid_samples=2000)
        t = time.perf_counter()
        m = run.evaluate()
        runs[tag] = (run, wall, m, time.perf_counter() - t)

    run, wall, m, eval_s = runs["fp32"]
    # alternate the two loops (A B A B) so that a shared machine's changing load hits both alike
    ours, peer = 0.0, 0.0
    for i in range(2):
        ours += genlab_loop_seconds(args.peer_steps, out / f"speed-{i}")
        peer += plain_loop_seconds(type(run.recipe), run.recipe.config, args.peer_steps)
    genlab_step, peer_step = ours / (2 * args.peer_steps), peer / (2 * args.peer_steps)
    lines += [
        f"vae (preset mnist, {args.steps} steps, batch 64): train wall {wall:.1f} s; evaluation {eval_s:.1f} s",
        f"  held-out: {_fmt(m, ['neg_elbo', 'recon_nll', 'kl', 'neg_elbo_per_dim', 'mse_per_pixel', 'mse_per_image'])}",
        f"  trained   prior samples: {_fmt(m, ['fid', 'kid', 'kid_std', 'precision', 'recall'])}",
        "  untrained prior samples: " + _fmt({k[:-10]: v for k, v in m.items() if k.endswith('_untrained')},
                                            ['fid', 'kid', 'kid_std', 'precision', 'recall']),
        f"  speed ({2 * args.peer_steps} steps each, alternated): genlab trainer {genlab_step * 1000:.1f} ms/step vs "
        f"plain PyTorch loop (same model, batches, Adam) {peer_step * 1000:.1f} ms/step -> "
        f"genlab/plain time ratio {genlab_step / peer_step:.2f}",
    ]
    with torch.no_grad():
        untrained = run.recipe._elbo_and_recon(run.recipe.untrained_model(), run.recipe.val_images())
    lines.append(f"  untrained VAE held-out: {_fmt(untrained, ['neg_elbo', 'mse_per_pixel'])}")
    if "bf16" in runs:
        _, wall_b, mb, _ = runs["bf16"]
        lines.append(f"  bf16 autocast: train wall {wall_b:.1f} s (fp32 {wall:.1f} s), "
                     f"{_fmt(mb, ['neg_elbo', 'fid', 'precision', 'recall'])}")

    t = time.perf_counter()
    ae = genlab.train("autoencoder", out=out / "ae", progress=False)
    wall = time.perf_counter() - t
    am = ae.evaluate()
    c = ae.recipe.config
    lines.append(f"autoencoder defaults (variant {c.variant}, {c.max_steps} steps, {ae.recipe.data.source}): "
                 f"train wall {wall:.1f} s; held-out {_fmt(am, ['val_loss', 'mse_per_pixel', 'mse_per_image'])}")

    for size in (32, 64):
        clf = get_attribute_classifier(size)
        acc = ", ".join(f"{k} {v:.4f}" for k, v in clf.accuracy.items())
        lines.append(f"face attribute classifier {size}px: {acc} ({clf.version})")
    lines.append(f"load average at end: {os.getloadavg()[0]:.1f}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
