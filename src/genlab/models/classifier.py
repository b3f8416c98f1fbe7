"""Image classifiers: the book's MLPs and a small CNN.

The CNN doubles as the feature network of genlab's image metrics (FID, KID,
precision/recall): `features(x)` returns its penultimate activations.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .mlp import mlp


@dataclass
class ClassifierConfig:
    arch: str = "cnn"                 # cnn | mlp
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    hidden: tuple[int, ...] = (256, 128, 64)   # MLP hidden sizes (the book's 784-256-128-64-10)
    dropout: float = 0.0
    width: int = 32                   # CNN channels of the first block (doubled per block)
    feature_dim: int = 128


class MLPClassifier(nn.Module):
    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        d_in = cfg.in_channels * cfg.image_size ** 2
        self.net = mlp([d_in, *cfg.hidden, cfg.num_classes], dropout=cfg.dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[:-1](x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class CNNClassifier(nn.Module):
    """Three conv blocks (conv-BN-ReLU x2, max-pool), global average pool, a feature layer, logits."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        w = cfg.width

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(block(cfg.in_channels, w), block(w, 2 * w), block(2 * w, 4 * w),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature = nn.Sequential(nn.Linear(4 * w, cfg.feature_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.feature_dim, cfg.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def build_classifier(cfg: ClassifierConfig) -> nn.Module:
    if cfg.arch == "mlp":
        return MLPClassifier(cfg)
    if cfg.arch == "cnn":
        return CNNClassifier(cfg)
    raise ValueError(f"unknown classifier arch {cfg.arch!r}")
