"""Can the faces attribute classifier judge generated images? Plain vs robust network.

Generated faces always carry some pixel noise. This scores both faces networks (the plain
one behind FID, and the robust one trained on `degrade`d copies that genlab uses as the
attribute judge) on 1,000 held-out real faces (seed 7919, never used in training) with
Gaussian noise of growing std added, at 16 and 32 px: the glasses false-positive rate
(glasses-free faces read as "glasses"), the false-negative rate, and blond / smiling accuracy.

    python benchmarks/attribute_judge.py [--sizes 16,32]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from genlab.metrics.feature_net import AttributeClassifier, get_feature_net
from genlab.data.image_datasets import load_faces_tensors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="16,32")
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    print("| size | judge | noise std | glasses false pos. | glasses false neg. | blond acc. | smiling acc. |")
    print("|---|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        x, a = load_faces_tensors(args.n, size, 3, seed=7919)
        a = a.numpy()
        for robust in (False, True):
            t = time.time()
            clf = AttributeClassifier(get_feature_net("faces", size, 3, robust=robust))
            name = f"{'robust' if robust else 'plain'} ({time.time() - t:.0f} s to load/train)"
            g = torch.Generator().manual_seed(1)
            for std in (0.0, 0.05, 0.1, 0.2):
                p = np.asarray(clf.predict((x + std * torch.randn(x.shape, generator=g)).clamp(-1, 1)))
                no, yes = a[:, 0] == 0, a[:, 0] == 1
                print(f"| {size} | {name} | {std} | {(p[no, 0] == 1).mean():.3f} | {(p[yes, 0] == 0).mean():.3f} "
                      f"| {(p[:, 1] == a[:, 1]).mean():.3f} | {(p[:, 2] == a[:, 2]).mean():.3f} |")


if __name__ == "__main__":
    main()
