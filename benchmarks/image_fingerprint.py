"""A fingerprint of every image recipe: a tiny training run (10 steps, one thread) and its
evaluation, as JSON. Two source trees that give identical fingerprints train and score alike
(a refactor check: run it with PYTHONPATH at each tree and compare the files).

    GENLAB_CACHE=/tmp/fp/cache OMP_NUM_THREADS=1 PYTHONPATH=OLD/src python benchmarks/image_fingerprint.py /tmp/fp/old
    GENLAB_CACHE=/tmp/fp/cache OMP_NUM_THREADS=1 PYTHONPATH=NEW/src python benchmarks/image_fingerprint.py /tmp/fp/new
    python benchmarks/image_fingerprint.py --compare /tmp/fp/old.json /tmp/fp/new.json

Share GENLAB_CACHE between the two runs, so both score with the same feature networks.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

COMMON = {"threads": 1, "save_every": 0, "log_every": 5, "max_steps": 10}
CASES = {
    "gan-mlp": {"dataset": "digits", "hidden": [32, 32], "eval_samples": 50, "batch_size": 16},
    "dcgan": {"n_train": 200, "image_size": 16, "g_width": 8, "d_width": 8, "eval_samples": 50, "batch_size": 16},
    "cgan": {"n_train": 200, "g_width": 8, "d_width": 8, "eval_samples": 50, "batch_size": 16, "n_critic": 2},
    "cyclegan": {"n_train": 40, "n_val": 20, "image_size": 16, "g_width": 4, "n_blocks": 1, "d_width": 4,
                 "eval_samples": 10},
    "autoencoder": {"image_size": 8, "batch_size": 32},
    "vae": {"image_size": 16, "n_train": 200, "latent_dim": 8, "width": 8, "fid_samples": 30, "edit_samples": 10,
            "feature_steps": 4, "batch_size": 16},
    "diffusion": {"dataset": "digits", "image_size": 8, "channels": 1, "unet_channels": [8, 16],
                  "attention_resolutions": [4], "head_channels": 8, "groups": 4, "timesteps": 100, "batch_size": 16,
                  "eval_samples": 16, "eval_steps": 4},
    "classifier": {"arch": "mlp", "eval_every": 5},
}
TIMINGS = ("time", "sec_per_image")   # wall-clock fields: never part of the fingerprint


def fingerprint(out: Path) -> dict:
    import genlab

    res = {}
    for name, over in CASES.items():
        run = genlab.train(name, overrides={**COMMON, **over}, out=out / name, progress=False)
        rows = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
        res[name] = {"train": [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows if r["kind"] == "train"],
                     "eval": {k: v for k, v in run.evaluate().items() if k not in TIMINGS}}
        print(f"{name}: done", flush=True)
    return res


def same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def compare(a: dict, b: dict) -> None:
    for name in a:
        diffs = [k for k in a[name]["eval"] if not same(a[name]["eval"][k], b[name]["eval"].get(k))]
        print(f"{name}: training logs {'identical' if a[name]['train'] == b[name]['train'] else 'DIFFER'}, "
              f"evaluation {'identical' if not diffs else 'DIFFERS in ' + ', '.join(diffs)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", help="folder for the runs; the fingerprint goes to OUT.json")
    ap.add_argument("--compare", nargs=2, metavar="JSON", help="compare two fingerprints")
    args = ap.parse_args()
    if args.compare:
        compare(*(json.loads(Path(p).read_text()) for p in args.compare))
        return
    out = Path(args.out)
    Path(f"{out}.json").write_text(json.dumps(fingerprint(out), indent=1))


if __name__ == "__main__":
    main()
