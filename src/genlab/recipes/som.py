"""A self-organizing map (models/som.py) on any vectors: colours, digits, a CSV of vectors.

Each step takes a batch of inputs; every unit moves toward the inputs whose best-matching
unit is near it on the grid (a Gaussian neighbourhood of width sigma). The learning rate and
sigma shrink as minisom's default schedule does: x(t) = x0 / (1 + t / (T / 2)), so at the
end they are a third of their start. No gradients and no optimizer: the codebook is the
state, the schedule a function of the step, so resume is exact.

Pictures: the codebook as a map (colour units as pixels, image units as tiles), the U-matrix
(bright = far from its neighbours: cluster borders) and a hit map. Evaluation on held-out
vectors: quantization error (mean distance to the best-matching unit) and topographic
error (share of inputs whose two best units are not neighbours), beside an untrained map.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.text import read_number_rows
from ..engine.config import TrainConfig
from ..errors import ConfigError
from ..models.som import SOM
from ..outputs import Bundle, Images, Points
from .base import Recipe, SampleOptions


@dataclass
class Config(TrainConfig):
    dataset: str = "colours"        # colours (random RGB) | digits (scikit-learn's 8x8, 64-d); --data: a CSV of vectors
    n_colours: int = 4000           # random colours generated for dataset=colours
    val_fraction: float = 0.2       # held-out share
    rows: int = 20                  # grid rows
    cols: int = 20                  # grid columns
    sigma: float = 0.0              # starting neighbourhood width in grid units (0 = max(rows, cols) / 6: ends near 1)
    lr: float = 0.5                 # starting learning rate (minisom's default)
    epochs: float = 10.0            # passes over the training vectors (sets max_steps; 0 = use max_steps)
    max_steps: int = 500
    batch_size: int = 32
    eval_every: int = 0
    save_every: int = 0
    threads: int = 1
    bounds = {"n_colours": "[10, 10000000]", "rows": "[1, 1000]", "cols": "[1, 1000]", "sigma": "[0, inf)",
              "lr": "(0, 1]", "epochs": "[0, 100000]"}

    def check(self) -> None:
        if self.dataset not in ("colours", "digits"):
            raise ConfigError(f"invalid config: dataset must be colours or digits, got {self.dataset!r}")
        if self.rows * self.cols < 2:
            raise ConfigError("invalid config: the map needs at least 2 units (rows * cols)")

    def start_sigma(self) -> float:
        return self.sigma or max(self.rows, self.cols) / 6


@dataclass
class Sample(SampleOptions):
    n: int = 1000                   # held-out vectors counted in the hit map


def decay(x0: float, step: int, total: int) -> float:
    """minisom's asymptotic decay: x0 at the start, x0 / 3 at the end."""
    return x0 / (1 + step / (total / 2))


def load_vectors(path: Path) -> np.ndarray:
    """Rows of numbers (comma or whitespace separated) from a text file; a header line is skipped."""
    return read_number_rows(path, what="rows of numbers")


class SOMRecipe(Recipe):
    name = "som"
    Config = Config
    Sample = Sample
    presets = {"digits": {"dataset": "digits", "rows": 10, "cols": 10, "epochs": 10}}

    # -- data -------------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        c = self.config
        self.image_side = 0
        if c.data:
            x = load_vectors(Path(c.data))
        elif c.dataset == "colours":
            x = np.random.default_rng(c.seed).random((c.n_colours, 3), dtype=np.float32)
        else:
            from ..data.digits import load_digits

            images, _ = load_digits()
            x, self.image_side = images.reshape(len(images), -1), 8
        x = torch.from_numpy(x)[torch.randperm(len(x), generator=torch.Generator().manual_seed(c.seed))]
        n_val = max(1, int(len(x) * c.val_fraction))
        self.train_x, self.val_x = x[n_val:], x[:n_val]

    def setup(self, training: bool, resume: bool = False) -> None:
        super().setup(training, resume)
        c = self.config
        if training and c.epochs > 0:  # epochs count vectors, the trainer counts steps
            c.max_steps = max(1, int(np.ceil(c.epochs * len(self.train_x) / c.batch_size)))

    def show_data(self, n: int | None = None) -> Points:
        """The first n (16 by default) training vectors, one row each."""
        self.load_data_once()
        x = self.train_x[:n or 16].numpy()
        columns = ["r", "g", "b"] if not self.config.data and self.config.dataset == "colours" \
            else [f"x{i}" for i in range(x.shape[1])]
        return Points(x, columns, name="data")

    @property
    def dim(self) -> int:
        return self.train_x.shape[1]

    def build_modules(self) -> dict[str, nn.Module]:
        self.load_data_once()  # the data's dimension decides the codebook's
        c = self.config
        torch.manual_seed(c.seed)
        som = SOM(c.rows, c.cols, self.dim)
        lo, hi = self.train_x.min(0).values, self.train_x.max(0).values
        som.codebook.data = lo + som.codebook.data * (hi - lo)  # uniform over the data's box
        return {"model": som}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}  # the map updates itself (no gradients)

    def batch(self, index: int) -> torch.Tensor:
        return self.train_x[self.batch_indices(index, len(self.train_x))].to(self.device)

    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        c = self.config
        lr, sigma = decay(c.lr, step, c.max_steps), decay(c.start_sigma(), step, c.max_steps)
        qe = self.modules["model"].update(batch, lr, sigma)
        return {"batch_quantization_error": qe, "sigma": sigma}

    # -- evaluation ---------------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        self.load_data_once()
        som, x = self.modules["model"], self.val_x.to(self.device)
        torch.manual_seed(self.config.seed)
        untrained = self.build_modules()["model"].to(self.device)
        return {"quantization_error": som.quantization_error(x), "topographic_error": som.topographic_error(x),
                "untrained_quantization_error": untrained.quantization_error(x),
                "untrained_topographic_error": untrained.topographic_error(x)}

    # -- pictures -------------------------------------------------------------------------------------------
    def generate(self, opts: Sample) -> Bundle:
        """The map (codebook vectors as colours or image tiles), its U-matrix and a hit map of
        `n` held-out vectors (bright = many inputs won by the unit)."""
        self.load_data_once()
        c, som = self.config, self.modules["model"]
        book = som.codebook.detach().float().cpu()

        def grey(values: torch.Tensor, name: str, title: str) -> Images:
            v = (values - values.min()) / (values.max() - values.min()).clamp(min=1e-12)
            return Images((v * 255).round().to(torch.uint8).numpy()[None, :, :, None], name=name, title=title)

        if self.dim == 3:  # colours: one pixel per unit
            lo, hi = book.min(), book.max()
            rgb = ((book - lo) / (hi - lo).clamp(min=1e-12)).reshape(c.rows, c.cols, 3)
            picture = Images((rgb * 255).round().to(torch.uint8).numpy()[None], name="map",
                             title=f"self-organizing map {c.rows}x{c.cols}: each pixel is one unit's colour")
        else:  # each unit as a tile: an image when the vectors are square images, else a strip of values
            side = self.image_side or int(round(self.dim ** 0.5))
            shape = (-1, side, side, 1) if side * side == self.dim else (-1, 1, self.dim, 1)
            t = (book - book.min()) / (book.max() - book.min()).clamp(min=1e-12)
            picture = Images((t.reshape(shape) * 255).round().to(torch.uint8).numpy(), ncol=c.cols,
                             name="map", title=f"self-organizing map {c.rows}x{c.cols}: each tile is one unit")
        g = torch.Generator().manual_seed(opts.seed)
        x = self.val_x[torch.randperm(len(self.val_x), generator=g)[:opts.n]].to(self.device)
        hits = torch.bincount(som.bmu(x).cpu(), minlength=c.rows * c.cols).float().reshape(c.rows, c.cols)
        return Bundle({"map": picture,
                       "u_matrix": grey(som.u_matrix().cpu(), "u-matrix",
                                        "U-matrix: bright = far from its neighbours (cluster borders)"),
                       "hits": grey(hits, "hits", f"hit map of {len(x)} held-out vectors (bright = many)")})
