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


def drop_labels(y: torch.Tensor, p_uncond: float, null: int | torch.Tensor, generator: torch.Generator
                ) -> torch.Tensor:
    """Replace each label (or condition row) by the null class (or null condition) with probability
    p_uncond (trains the unconditional model of classifier-free guidance inside the conditional one)."""
    drop = (torch.rand(y.shape[0], generator=generator) < p_uncond).to(y.device)
    if isinstance(null, int):
        return torch.where(drop, torch.full_like(y, null), y)
    return torch.where(drop.view(-1, *[1] * (y.ndim - 1)), null.to(y), y)


def guided(model: nn.Module, y: torch.Tensor | None, scale: float, null: int | torch.Tensor
           ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """model_fn(x, t) with classifier-free guidance (Ho & Salimans 2022):
    out = uncond + scale * (cond - uncond); scale 1 is the conditional model, 0 the unconditional.
    `null` is the null class (labels y) or the null condition itself (e.g. zero text embeddings).
    Conditional and unconditional outputs come from one batched forward."""
    if y is None:
        return lambda x, t: model(x, t)
    if scale == 1.0:
        return lambda x, t: model(x, t, y)
    null = torch.full_like(y, null) if isinstance(null, int) else null.to(y).expand_as(y)
    if scale == 0.0:
        return lambda x, t: model(x, t, null)

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).float()
        cond, uncond = both.chunk(2)
        return uncond + scale * (cond - uncond)
    return fn


