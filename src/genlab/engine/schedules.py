"""Learning-rate schedules as multipliers of the base lr, for torch's LambdaLR."""
from __future__ import annotations

import math
from typing import Callable


def lr_multiplier(kind: str, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.1,
                  d_model: int = 512) -> Callable[[int], float]:
    """Return f(step) -> multiplier. `step` counts optimizer steps from 0.

    constant: 1 after a linear warmup.
    cosine:   linear warmup, then cosine decay to `min_ratio` at `total_steps`.
    noam:     Vaswani et al.: d_model^-0.5 * min(s^-0.5, s * warmup^-1.5), s = step + 1;
              the configured lr scales it (lr = 1 reproduces the paper).
    """
    warmup = max(0, warmup_steps)

    def constant(step: int) -> float:
        return min(1.0, (step + 1) / warmup) if warmup else 1.0

    def cosine(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        span = max(1, total_steps - warmup)
        progress = min(1.0, (step - warmup) / span)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def noam(step: int) -> float:
        s = step + 1
        w = max(1, warmup)
        return d_model ** -0.5 * min(s ** -0.5, s * w ** -1.5)

    try:
        return {"constant": constant, "cosine": cosine, "noam": noam}[kind]
    except KeyError:
        raise ValueError(f"unknown lr schedule {kind!r}") from None
