"""What the trainer needs from a recipe, stated here so the engine never imports `recipes`.

`genlab.recipes.base.Recipe` implements this protocol; any object that does can be trained.
The trainer decides *when* (steps, micro-batches, evaluation, checkpoints) and tells the
recipe through these members; the recipe decides *what* a step is.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from .config import TrainConfig
from .distributed import DistInfo


class TrainableRecipe(Protocol):
    name: str
    config: TrainConfig
    device: torch.device
    dist: DistInfo
    modules: dict[str, nn.Module]           # what checkpoints hold
    train_modules: dict[str, nn.Module]     # what training_step calls (DDP wrappers under torchrun)
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]
    Sample: Any                             # the sampling-options dataclass; Sample() = defaults

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The recipe's optimizers by name (the trainer adds one LR schedule to each)."""

    def model_width(self) -> int | None:
        """The model's width (d_model) for the noam schedule; None when the recipe has none."""

    def start_micro_batch(self, index: int, count: int) -> None:
        """Micro-batch `index` of `count` per optimizer step begins (gradient accumulation):
        the recipe zeroes gradients on the first and steps its optimizers on the last."""

    def batch(self, index: int) -> Any:
        """This rank's part of global batch number `index` (a pure function of index)."""

    def training_step(self, batch: Any, step: int) -> dict[str, float]:
        """One micro-batch of optimization; returns scalars to log."""

    def evaluate(self) -> dict[str, float]:
        """Numbers on held-out data (called inside eval_mode). Before the last step the trainer
        sets `config` to engine.config.estimate_config(config) for the call: a cheaper estimate."""

    def write_samples(self, out_dir: Path, opts: Any) -> list[Path]:
        """Samples as files in out_dir (called inside eval_mode)."""

    def set_mode(self, train: bool) -> None:
        """Put every module in train (True) or eval (False) mode."""

    def eval_mode(self) -> contextlib.AbstractContextManager:
        """Eval mode, no gradients, training RNG untouched; restores the modes on exit."""
