"""Can the faces attribute judge be trusted? Face / non-face accuracy, attribute accuracy, probes.

The judge (metrics.feature_net.get_attribute_classifier) is the robust faces network (trained
on `degrade`d copies) behind a face gate (trained against metrics.non_faces). At each size:

1. held-out real faces (seed 7919, never used in training), with Gaussian noise of std 0,
   0.05, 0.1, 0.2 added: share called faces, glasses false-positive / false-negative rates,
   blond and smiling accuracy;
2. the gate's stored held-out accuracy: faces accepted, non-faces refused (per kind);
3. the probes of issue 10: blank black / grey / white images, uniform noise, N(0, 0.3) noise,
   the mean face, and untrained cgan and dcgan generators (the recipes' own networks, same
   init as a fresh run): share called faces, mean attribute predictions, and the score of
   "glasses" requested (a non-face counts as a failure).

    python benchmarks/attribute_judge.py [--sizes 16,32] [--plain]

--plain adds the old comparison of the plain faces network (the FID feature net) as a judge.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from genlab.api import build_config
from genlab.data.image_datasets import load_faces_tensors
from genlab.metrics.feature_net import AttributeClassifier, get_attribute_classifier, get_feature_net
from genlab.recipes import get_recipe


def untrained_generator_images(recipe: str, size: int, n: int = 200) -> torch.Tensor:
    cls = get_recipe(recipe)
    r = cls(build_config(cls, overrides={"image_size": size, "device": "cpu"}), "cpu")
    r.setup(training=True)
    z = r.latents(n, 12345)
    with r.eval_mode(), torch.no_grad():
        if recipe == "cgan":
            return r.generator_images(z, r.one_hot(torch.ones(n, dtype=torch.long)))
        return r.generator_images(z)


def probes(size: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    faces, _ = load_faces_tensors(2000, size, 3, seed=0)
    return {"black (-1)": torch.full((1, 3, size, size), -1.0), "zeros (mid grey)": torch.zeros(1, 3, size, size),
            "grey 0.5": torch.full((1, 3, size, size), 0.5), "white": torch.ones(1, 3, size, size),
            "uniform U(-1, 1), 500": torch.rand(500, 3, size, size, generator=g) * 2 - 1,
            "N(0, 0.3), 500": (0.3 * torch.randn(500, 3, size, size, generator=g)).clamp(-1, 1),
            "mean face": faces.mean(0, keepdim=True),
            "untrained cgan, 200": untrained_generator_images("cgan", size),
            "untrained dcgan, 200": untrained_generator_images("dcgan", size)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="16,32")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--plain", action="store_true", help="also score the plain faces network as a judge")
    args = ap.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        t = time.time()
        judge = get_attribute_classifier(size)
        print(f"\n## {size} px: {judge.version} ({time.time() - t:.0f} s to load/train; judge trained in "
              f"{judge.net.meta.get('train_seconds')} s, gate in {judge.gate.meta.get('train_seconds')} s)")
        print(f"stored held-out accuracy: {judge.accuracy}; gate: {json.dumps(judge.face_accuracy)}")
        x, a = load_faces_tensors(args.n, size, 3, seed=7919)
        a = a.numpy()
        judges = {"judge": judge}
        if args.plain:
            judges["plain"] = AttributeClassifier(get_feature_net("faces", size, 3), judge.gate)
        print("\n| size | judge | noise std | called faces | glasses false pos. | glasses false neg. | "
              "glasses acc. | blond acc. | smiling acc. |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, clf in judges.items():
            g = torch.Generator().manual_seed(1)
            for std in (0.0, 0.05, 0.1, 0.2):
                face, p = clf.judge((x + std * torch.randn(x.shape, generator=g)).clamp(-1, 1))
                no, yes = a[:, 0] == 0, a[:, 0] == 1
                print(f"| {size} | {name} | {std} | {face.mean():.3f} | {(p[no, 0] == 1).mean():.3f} | "
                      f"{(p[yes, 0] == 0).mean():.3f} | {(p[:, 0] == a[:, 0]).mean():.3f} | "
                      f"{(p[:, 1] == a[:, 1]).mean():.3f} | {(p[:, 2] == a[:, 2]).mean():.3f} |")
        print("\n| size | probe | called faces | predicted glasses / blond / smiling (mean) | "
              "score for \"glasses\" requested |")
        print("|---|---|---|---|---|")
        for name, imgs in probes(size).items():
            face, p = judge.judge(imgs)
            s = judge.score(imgs, "glasses", 1)
            print(f"| {size} | {name} | {face.mean():.3f} | {' / '.join(f'{v:.2f}' for v in p.mean(0))} | "
                  f"{s['attribute_acc']:.3f} |")


if __name__ == "__main__":
    main()
