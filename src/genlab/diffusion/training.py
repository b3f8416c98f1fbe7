"""The training side of diffusion: losses and classifier-free guidance (EMA weights: engine/ema.py)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

LOSSES = ("l2", "l1", "huber")


def diffusion_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l2", huber_delta: float = 1.0) -> torch.Tensor:
    """Mean loss between model output and target: l2 (Ho et al.), l1, or huber (Hands-On ML)."""
    pred, target = pred.float(), target.float()
    if kind == "l2":
        return F.mse_loss(pred, target)
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "huber":
        return F.huber_loss(pred, target, delta=huber_delta)
    raise ConfigError(f"unknown loss '{kind}' (use {', '.join(LOSSES)})")


def drop_labels(y: torch.Tensor, p_uncond: float, null_class: int, generator: torch.Generator) -> torch.Tensor:
    """Replace each label by the null class with probability p_uncond (trains the unconditional
    model of classifier-free guidance inside the conditional one)."""
    drop = torch.rand(y.shape[0], generator=generator) < p_uncond
    return torch.where(drop.to(y.device), torch.full_like(y, null_class), y)


def guided(model: nn.Module, y: torch.Tensor | None, scale: float, null_class: int
           ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """model_fn(x, t) with classifier-free guidance (Ho & Salimans 2022):
    out = uncond + scale * (cond - uncond); scale 1 is the conditional model, 0 the unconditional.
    Conditional and unconditional outputs come from one batched forward."""
    if y is None:
        return lambda x, t: model(x, t)
    if scale == 1.0:
        return lambda x, t: model(x, t, y)
    null = torch.full_like(y, null_class)
    if scale == 0.0:
        return lambda x, t: model(x, t, null)

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).float()
        cond, uncond = both.chunk(2)
        return uncond + scale * (cond - uncond)
    return fn


