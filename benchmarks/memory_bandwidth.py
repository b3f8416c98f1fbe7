"""This machine's memory bandwidth, STREAM-style, in torch (and numpy for copy), at 1 and 2 threads.

    python benchmarks/memory_bandwidth.py [--mib 512] [--repeats 7] [--threads 1 2] [--out results.json]

Kernels over float32 arrays of `--mib` MiB each (far larger than the last-level cache), as in
McCalpin's STREAM: copy a = b (numpy: np.copyto), scale a = s*b, add a = b + c, triad
a = b + s*c, plus a read-only pass (sum(b)) — what batch-1 decoding does with its weights.
Bytes counted as STREAM counts them (copy/scale 2 arrays, add/triad 3, read 1; the
write-allocate read of `a` not counted). Best of `--repeats` per kernel, as STREAM reports.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch


def best_seconds(fn, repeats: int) -> float:
    fn()  # first touch / warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(n: int, repeats: int) -> dict[str, float]:
    """GB/s (1e9 bytes per second) of each kernel at torch's current thread count."""
    a, b, c = torch.empty(n), torch.rand(n), torch.rand(n)
    an, bn = a.numpy(), b.numpy()
    nbytes = 4 * n
    kernels = {
        "copy": (lambda: a.copy_(b), 2),
        "scale": (lambda: torch.mul(b, 3.0, out=a), 2),
        "add": (lambda: torch.add(b, c, out=a), 3),
        "triad": (lambda: torch.add(b, c, alpha=3.0, out=a), 3),
        "read (sum)": (lambda: b.sum(), 1),
        "numpy copy (1 thread)": (lambda: np.copyto(an, bn), 2),
    }
    return {k: arrays * nbytes / best_seconds(fn, repeats) / 1e9 for k, (fn, arrays) in kernels.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=512, help="size of each array")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", default=None)
    a = p.parse_args()
    n = a.mib * 2**20 // 4
    res: dict = {"array_mib": a.mib, "load_avg_before": os.getloadavg(), "torch": torch.__version__,
                 "numpy": np.__version__, "gb_per_s": {}}
    for t in a.threads:
        torch.set_num_threads(t)
        res["gb_per_s"][f"{t} thread{'s' if t > 1 else ''}"] = measure(n, a.repeats)
    res["load_avg_after"] = os.getloadavg()
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    sys.exit(main())
