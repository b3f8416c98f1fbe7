"""Small fully connected networks: the book's MLP classifiers and the toy GANs' nets."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU, dropout: float = 0.0,
        final_activation: nn.Module | None = None) -> nn.Sequential:
    """Linear layers of `sizes` with `activation` (and dropout) between hidden layers only.

    Dropout never follows the output layer (one of the book's bugs): it would randomly
    zero logits at training time.
    """
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    if final_activation is not None:
        layers.append(final_activation)
    return nn.Sequential(*layers)


class Standardizer(nn.Module):
    """Maps data to zero mean / unit variance and back; its statistics travel with the weights."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> "Standardizer":
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-8))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean
