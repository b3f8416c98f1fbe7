"""Exponential moving average (EMA) of a model's weights, shared by every recipe that samples
from averaged weights (diffusion U-Nets, GAN generators). Averaging smooths the step-to-step
noise of the optimizer, which shows as cleaner samples (Karras et al. 2018; Ho et al. 2020)."""
from __future__ import annotations

import torch
from torch import nn


def ema_decay(step: int, max_decay: float = 0.999, warmup: bool = True) -> float:
    """EMA decay at optimizer step `step`: min(max_decay, (1 + step) / (10 + step)) with warmup, so
    the average does not drag the random initial weights along in short runs."""
    return min(max_decay, (1 + step) / (10 + step)) if warmup else max_decay


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, for parameters; buffers (e.g. batch-norm
    running statistics) are copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach().to(e.dtype), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
