"""A tiny recipe for trainer unit tests (fits y = 3x - 1 with one linear layer in milliseconds),
shared by the engine tests."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genlab.engine.config import TrainConfig
from genlab.recipes.base import Recipe


@dataclass
class LineConfig(TrainConfig):
    nan_at: int = 0          # make the loss NaN from this step on (0 = never)
    max_steps: int = 40
    batch_size: int = 16
    lr: float = 0.05
    log_every: int = 1
    eval_every: int = 5
    save_every: int = 10


class LineRecipe(Recipe):
    """Fit y = 3x - 1; its 'score' evaluation peaks at step 10 to exercise early stopping."""

    name = "line"
    Config = LineConfig

    def build_modules(self):
        torch.manual_seed(0)
        return {"model": torch.nn.Linear(1, 1)}

    def prepare_data(self):
        self.xs = torch.linspace(-1, 1, 64)[:, None]

    def batch(self, index):
        x = self.xs[self.batch_indices(index, len(self.xs))]
        return x, 3 * x - 1

    def training_step(self, batch, step):
        x, y = batch
        loss = ((self.train_modules["model"](x) - y) ** 2).mean()
        if self.config.nan_at and step >= self.config.nan_at:
            loss = loss * float("nan")
        self.optimize("model", loss)
        return {"loss": loss.item()}

    def evaluate(self):
        self.evals = getattr(self, "evals", 0) + 1
        return {"score": -abs(self.evals - 2)}  # best at the 2nd evaluation (step 10)

    def generate(self, opts):
        return self.modules["model"](torch.zeros(1, 1))

    def write_samples(self, out_dir, opts):
        return []
