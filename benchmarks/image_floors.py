"""Real-vs-real noise floors of the image tables in BENCHMARKS.md.

FID is biased upwards at small sample sizes and every FID/KID moves with the particular
samples drawn. The floor is what a perfect generator would score: real images that are not in
the reference set (the recipe's training images) scored against the reference set (its held-out
images) at the table's sample sizes, in the same feature space. Each row draws k disjoint
subsets of the training images and reports the mean and the range (min-max) of FID and KID.

    python benchmarks/image_floors.py [--tables gan-mlp,dcgan,cgan,cyclegan,diffusion,vae,vae-mnist] [--k 4]
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import torch

from genlab.api import build_config
from genlab.data.images import to_float
from genlab.metrics.image import fid, kid
from genlab.recipes import get_recipe


def recipe(name: str, preset: str | None = None) -> Any:
    cls = get_recipe(name)
    r = cls(build_config(cls, preset, overrides={"device": "cpu"}), "cpu")
    r.setup(training=True)
    r.load_data_once()
    return r


def tables(names: list[str]) -> list[tuple[str, Any, torch.Tensor, torch.Tensor, list[int]]]:
    """(table, feature net, reference images, pool of other real images, sample sizes)."""
    out = []
    for name in names:
        if name in ("gan-mlp", "dcgan", "cgan"):
            r = recipe(name)
            out.append((f"{name} ({r.domain} {r.config.image_size} px)", r.feature_net(),
                        to_float(r.data.val), to_float(r.data.train), [r.config.eval_samples]))
        elif name == "cyclegan":
            r = recipe(name)
            c = r.config
            n = min(c.eval_samples, len(r.val_a))
            # one row per direction: each scores translations against the target domain's held-out faces
            for tag, ref, pool in (("A→B", r.val_b, r.train_b), ("B→A", r.val_a, r.train_a)):
                out.append((f"cyclegan {tag} ({r.domain} {c.image_size} px)", r.feature_net(), to_float(ref),
                            to_float(pool), [n]))
        elif name == "diffusion":
            r = recipe(name)
            out.append((f"diffusion ({r.domain} {r.config.image_size} px)", r.feature_net(), r.val_x[:1000], r.train_x,
                        [32, 100, 256, 500]))
        elif name == "vae":
            r = recipe("vae")
            n = min(r.config.fid_samples, len(r.val_images()))
            # evaluate() scores n prior samples against the first n held-out images
            out.append((f"vae ({r.data.domain} {r.config.image_size} px)", r.feature_net(),
                        to_float(r.val_images()[:n]), to_float(r.data.train), [n]))
        elif name == "vae-mnist":
            r = recipe("vae", "mnist")
            out.append(("vae --preset mnist (MNIST 28 px)", r.feature_net(), to_float(r.data.val[:2000]),
                        to_float(r.data.train), [2000]))
        else:
            raise SystemExit(f"unknown table {name}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="gan-mlp,dcgan,cgan,cyclegan,diffusion,vae,vae-mnist")
    ap.add_argument("--k", type=int, default=4, help="disjoint subsets of the other real images per row")
    args = ap.parse_args()
    rows = []
    for table, net, ref, pool, sizes in tables(args.tables.split(",")):
        rf, pf = net.features(ref), net.features(pool)
        for n in sizes:
            k = min(args.k, len(pf) // n)
            if k < 1:
                rows.append(f"| {table} | {n} | {len(rf)} | too few training images ({len(pf)}) |||")
                continue
            f = [fid(rf, pf[i * n:(i + 1) * n]) for i in range(k)]
            kk = [kid(rf, pf[i * n:(i + 1) * n])[0] for i in range(k)]
            rows.append(f"| {table} | {n} | {len(rf)} | {np.mean(f):.2f} ({min(f):.2f}–{max(f):.2f}) | "
                        f"{np.mean(kk):.2f} ({min(kk):.2f}–{max(kk):.2f}) | {k} | `{net.version}` |")
            print(rows[-1], file=sys.stderr, flush=True)
    print("| table | n generated | n reference | FID floor: mean (range) | KID floor: mean (range) | subsets | feature net |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
