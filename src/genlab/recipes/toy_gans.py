"""The two toy GANs of the reference texts: points on a curve, and numbers with a pattern.

Both train a small generator against a small discriminator with the standard
(non-saturating) GAN loss. Fixes over the book: the discriminator outputs logits and
uses BCE-with-logits (numerically stable), fakes are generated under no_grad for the
discriminator step, curve data is standardized, and the metrics see mode collapse.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.synthetic import curve_points, make_curve_fn, one_hot, pattern_numbers, valid_values
from ..engine.config import TrainConfig
from ..errors import ConfigError, DataError
from ..models.mlp import Standardizer, mlp
from ..outputs import Points
from .base import Recipe, SampleOptions


def gan_step(recipe: Recipe, real: torch.Tensor, z_d: torch.Tensor, z_g: torch.Tensor,
             transform_fake=lambda x: x) -> dict[str, float]:
    """One discriminator update then one generator update (non-saturating loss).

    Real and fake go through the discriminator in one forward, so DDP sees one forward per backward.
    """
    G, D = recipe.train_modules["generator"], recipe.train_modules["discriminator"]
    with torch.no_grad():  # detached fakes: the D step must not touch G
        fake = transform_fake(G(z_d))
    with recipe.autocast():
        d_logits = D(torch.cat([real, fake])).float()
    # a packed discriminator gives one logit per group, so count real outputs proportionally
    n = d_logits.shape[0] * real.shape[0] // (real.shape[0] + fake.shape[0])
    labels = torch.cat([torch.ones(n, 1), torch.zeros(d_logits.shape[0] - n, 1)]).to(real.device)
    d_loss = F.binary_cross_entropy_with_logits(d_logits, labels)
    recipe.optimize("discriminator", d_loss)

    with recipe.autocast():
        g_logits = D(transform_fake(G(z_g))).float()
    g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
    recipe.optimize("generator", g_loss)
    d_real_acc = (d_logits[:n] > 0).float().mean().item()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "d_real_acc": d_real_acc}


def two_adams(recipe: Recipe, betas: tuple[float, float] = (0.5, 0.999)) -> dict[str, torch.optim.Optimizer]:
    return {name: torch.optim.Adam(recipe.modules[name].parameters(), lr=recipe.config.lr, betas=betas)
            for name in ("discriminator", "generator")}


# --------------------------------------------------------------------------------------------
# gan-curve
# --------------------------------------------------------------------------------------------
@dataclass
class CurveConfig(TrainConfig):
    alternating_steps = True   # D and G step in turn (no grad_accum)
    fn: str = "exp"            # exp (1.08**x, the book's), sin, square, or an expression in x
    x_min: float = 0.0         # left end of the x range
    x_max: float = 50.0        # right end of the x range
    n_train: int = 2048        # points in the embedded training set
    latent_dim: int = 2        # noise dimensions fed to the generator
    hidden: int = 64           # width of the generator (the discriminator is 4x, 2x, 1x this)
    max_steps: int = 3000
    batch_size: int = 128
    lr: float = 5e-4
    eval_every: int = 100
    save_every: int = 500
    early_stop_metric: str = "mse"
    early_stop_patience: int = 10
    eval_samples: int = 2000   # generated points scored per evaluation
    coverage_bins: int = 50    # equal-width x bins for x_coverage
    bounds = {"x_min": "(-inf, inf)", "x_max": "(-inf, inf)", "n_train": "[1, inf)", "latent_dim": "[1, inf)",
              "hidden": "[1, inf)", "eval_samples": "[1, inf)", "coverage_bins": "[1, inf)"}

    def check(self) -> None:
        if not self.x_max > self.x_min:
            raise ConfigError("invalid config: x_max must be > x_min")
        make_curve_fn(self.fn)  # raises on an unsafe or malformed expression


@dataclass
class CurveSample(SampleOptions):
    n: int = 1000


class CurveGANRecipe(Recipe):
    name = "gan-curve"
    Config = CurveConfig
    Sample = CurveSample
    presets = {"book": {"latent_dim": 2, "hidden": 16, "lr": 5e-4, "batch_size": 128, "max_steps": 10000}}

    def build_modules(self) -> dict[str, nn.Module]:
        c = self.config
        torch.manual_seed(c.seed)
        return {
            "generator": mlp([c.latent_dim, c.hidden, 2 * c.hidden, 2]),
            "discriminator": mlp([2, 4 * c.hidden, 2 * c.hidden, c.hidden, 1], nn.LeakyReLU, dropout=0.3),
            "scaler": self._fit_scaler(),
        }

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return two_adams(self)

    def _fit_scaler(self) -> Standardizer:
        return Standardizer(2).fit(torch.from_numpy(self.points if self.has_data else self._reference(4096)))

    has_data = property(lambda self: getattr(self, "points", None) is not None)

    def _reference(self, n: int, seed: int = 12345) -> np.ndarray:
        c = self.config
        return curve_points(n, c.fn, c.x_min, c.x_max, seed=seed)

    def prepare_data(self) -> None:
        c = self.config
        if c.data:
            pts = load_points(Path(c.data))
            rng = np.random.default_rng(c.seed)
            pts = pts[rng.permutation(len(pts))]
            n_val = max(1, len(pts) // 10)
            self.points, self.val_points = pts[n_val:], pts[:n_val]
        else:
            self.points = curve_points(c.n_train, c.fn, c.x_min, c.x_max, seed=c.seed)
            self.val_points = self._reference(c.eval_samples)
        self.points_t = torch.from_numpy(self.points)

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        c = self.config
        real = self.points_t[self.batch_indices(index, len(self.points_t))]
        g = self.step_rng(index)
        z = torch.randn(2, c.batch_size, c.latent_dim, generator=g)
        return {k: v.to(self.device) for k, v in
                {"real": real, "z_d": self.shard(z[0]), "z_g": self.shard(z[1])}.items()}

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        real = self.modules["scaler"](batch["real"])
        return gan_step(self, real, batch["z_d"], batch["z_g"])

    def show_data(self, n: int | None = None) -> Points:
        """The first n training points (all by default) over the curve they come from."""
        self.load_data_once()
        c = self.config
        pts = self.points[:n] if n else self.points
        ref = self.val_points if c.data else self._reference(2000)
        title = f"gan-curve data: {len(pts)} of {len(self.points)} training points ({c.data or c.fn})"
        return Points(pts, ["x", "y"], name="data", plot=partial(_scatter, ref, title, label="training data"))

    def generate(self, opts: CurveSample) -> Points:
        """n generated (x, y) points in data units; their picture shows them over the curve."""
        g = torch.Generator().manual_seed(opts.seed)
        z = torch.randn(opts.n, self.config.latent_dim, generator=g).to(self.device)
        pts = self.modules["scaler"].inverse(self.modules["generator"](z)).float().cpu().numpy()
        c = self.config
        ref = self.val_points if self.has_data and c.data else self._reference(2000)
        plot = partial(_scatter, ref, f"gan-curve: {c.fn if not c.data else c.data}")
        return Points(pts, ["x", "y"], name="points", plot=plot)

    def evaluate(self) -> dict[str, float]:
        c = self.config
        pts = self.generate(CurveSample(n=c.eval_samples, seed=0)).values
        if not self.has_data:  # evaluation after load: the held-out set comes back from the config
            self.load_data_once()
        scaler = self.modules["scaler"]
        std = scaler.std.cpu().numpy()
        if c.data:  # no known curve: squared distance to the nearest held-out point, standardized
            d = ((pts[:, None, :] - self.val_points[None, :, :]) / std) ** 2
            mse = float(d.sum(-1).min(1).mean())
            lo, hi = float(self.val_points[:, 0].min()), float(self.val_points[:, 0].max())
        else:
            f = make_curve_fn(c.fn)
            mse = float(np.mean(((pts[:, 1] - f(pts[:, 0])) / std[1]) ** 2))
            lo, hi = c.x_min, c.x_max
        return {"mse": mse, "x_coverage": x_coverage(pts[:, 0], lo, hi, c.coverage_bins),
                "out_of_range": float(np.mean((pts[:, 0] < lo) | (pts[:, 0] > hi)))}


def _scatter(reference: np.ndarray, title: str, values: np.ndarray, path: Path, label: str = "generated") -> Path:
    """Generated (or training) points over the reference curve (a Points plot)."""
    from ..metrics.plots import scatter_vs_curve

    return scatter_vs_curve(values, reference, path, title=title, label=label)


def x_coverage(x: np.ndarray, lo: float, hi: float, bins: int) -> float:
    """Share of equal-width bins of [lo, hi] that hold at least one generated x."""
    inside = x[(x >= lo) & (x <= hi)]
    idx = np.clip(((inside - lo) / (hi - lo) * bins).astype(int), 0, bins - 1)
    return len(np.unique(idx)) / bins


def load_points(path: Path) -> np.ndarray:
    """Two numeric columns (x, y) from a CSV/whitespace text file; a header line is skipped."""
    from ..data.text import read_number_rows

    return read_number_rows(path, columns=2, what="(x, y) points")


# --------------------------------------------------------------------------------------------
# gan-pattern
# --------------------------------------------------------------------------------------------
@dataclass
class PatternConfig(TrainConfig):
    alternating_steps = True   # D and G step in turn (no grad_accum)
    multiple: int = 5          # the pattern: multiples of 5 ...
    low: int = 0               # smallest integer of the pattern
    high: int = 100            # ... in [low, high); also the one-hot width
    n_train: int = 4096        # integers in the embedded training set
    latent_dim: int = 16       # noise dimensions fed to the generator
    hidden: int = 128          # hidden width of generator and discriminator
    pack: int = 4              # PacGAN: the discriminator judges groups of `pack` samples (fights mode collapse)
    gumbel_tau: float = 1.0    # temperature of the Gumbel-softmax draw of fake one-hots
    max_steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    eval_every: int = 100
    save_every: int = 500
    early_stop_metric: str = "score"
    early_stop_mode: str = "max"
    eval_samples: int = 4000   # generated integers scored per evaluation
    bounds = {"multiple": "[1, inf)", "high": "[1, 1000000]", "n_train": "[1, inf)", "latent_dim": "[1, inf)",
              "hidden": "[1, inf)", "pack": "[1, inf)", "gumbel_tau": "(0, inf)", "eval_samples": "[1, inf)"}

    def check(self) -> None:
        if self.multiple < 1 or self.high <= self.low or self.low < 0:
            raise ConfigError("invalid config: need multiple >= 1 and 0 <= low < high")
        if self.pack < 1 or self.batch_size % self.pack:
            raise ConfigError("invalid config: batch_size must be a multiple of pack")


@dataclass
class PatternSample(SampleOptions):
    n: int = 2000


class Packed(nn.Module):
    """Discriminator over groups of `pack` samples (PacGAN): a collapsed generator is easy to spot."""

    def __init__(self, net: nn.Module, pack: int):
        super().__init__()
        self.net, self.pack = net, pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0] // self.pack, -1))


class PatternGANRecipe(Recipe):
    name = "gan-pattern"
    Config = PatternConfig
    Sample = PatternSample
    presets = {"book": {"latent_dim": 100, "hidden": 100, "pack": 1, "batch_size": 128, "lr": 5e-4}}

    @property
    def width(self) -> int:
        return self.config.high

    def build_modules(self) -> dict[str, nn.Module]:
        c = self.config
        torch.manual_seed(c.seed)
        return {
            "generator": mlp([c.latent_dim, c.hidden, c.hidden, self.width]),
            "discriminator": Packed(mlp([self.width * c.pack, c.hidden, c.hidden // 2, 1], nn.LeakyReLU), c.pack),
        }

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return two_adams(self)

    def prepare_data(self) -> None:
        c = self.config
        if c.data:
            numbers = load_integers(Path(c.data), c.high)
        else:
            numbers = pattern_numbers(c.n_train, c.multiple, c.low, c.high, seed=c.seed)
        self.numbers = torch.from_numpy(numbers)
        self.valid = np.unique(numbers) if c.data else valid_values(c.multiple, c.low, c.high)
        counts = np.bincount(numbers, minlength=self.width).astype(np.float64)
        self.target_dist = counts / counts.sum()

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        c = self.config
        real = torch.from_numpy(one_hot(self.numbers[self.batch_indices(index, len(self.numbers))].numpy(),
                                        self.width))
        z = torch.randn(2, c.batch_size, c.latent_dim, generator=self.step_rng(index))
        return {k: v.to(self.device) for k, v in
                {"real": real.float(), "z_d": self.shard(z[0]), "z_g": self.shard(z[1])}.items()}

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        # The generator emits logits of a categorical distribution; a straight-through Gumbel-softmax
        # draws an exact one-hot from it (so the discriminator cannot tell fakes by their softness)
        # while gradients still reach the logits. Covering every valid number is then easy for G.
        return gan_step(self, batch["real"], batch["z_d"], batch["z_g"],
                        lambda x: F.gumbel_softmax(x.float(), tau=self.config.gumbel_tau, hard=True))

    def show_data(self, n: int | None = None) -> Points:
        """The first n training integers (all by default) and their histogram (valid values in green)."""
        self.load_data_once()
        nums = (self.numbers[:n] if n else self.numbers).numpy()
        return Points(nums, ["value"], name="data", plot=partial(_histogram, self.valid, self.width,
                                                                   what="training"))

    def generate(self, opts: PatternSample) -> Points:
        """n integers drawn from the generator's categorical distribution; their picture is a
        histogram with the valid values in green."""
        if not hasattr(self, "valid"):
            self.load_data_once()
        g = torch.Generator().manual_seed(opts.seed)
        z = torch.randn(opts.n, self.config.latent_dim, generator=g).to(self.device)
        probs = self.modules["generator"](z).float().softmax(-1).cpu()
        nums = torch.multinomial(probs, 1, generator=g).squeeze(-1).numpy()
        plot = partial(_histogram, self.valid, self.width)
        return Points(nums, ["value"], name="numbers", plot=plot)

    def evaluate(self) -> dict[str, float]:
        if not hasattr(self, "valid"):
            self.load_data_once()
        nums = self.generate(PatternSample(n=self.config.eval_samples, seed=0)).values[:, 0]
        valid = np.isin(nums, self.valid)
        coverage = len(np.intersect1d(np.unique(nums), self.valid)) / len(self.valid)
        dist = np.bincount(nums, minlength=self.width) / len(nums)
        tv = 0.5 * float(np.abs(dist - self.target_dist).sum())
        # one number to early-stop on: valid and covering, close to the data distribution
        return {"valid_share": float(valid.mean()), "coverage": coverage, "tv_distance": tv,
                "score": float(valid.mean()) * coverage * (1 - tv)}


def _histogram(valid: np.ndarray, width: int, values: np.ndarray, path: Path, what: str = "generated") -> Path:
    """Counts of each generated (or training) integer, valid values in green (a Points plot)."""
    from ..metrics.plots import histogram_numbers

    return histogram_numbers(values[:, 0], valid, width, path, what=what)


def load_integers(path: Path, high: int) -> np.ndarray:
    """Whitespace/comma separated integers in [0, high) from a text file."""
    from ..data.text import read_text

    tokens = read_text(path).text.replace(",", " ").split()
    try:
        ints = [int(t) for t in tokens]
    except ValueError as e:
        raise DataError(f"{path}: expected integers, {e}") from None
    if len(ints) < 10:
        raise DataError(f"{path}: need at least 10 integers, found {len(ints)}")
    outside = next((v for v in ints if not 0 <= v < high), None)
    if outside is not None:
        raise DataError(f"{path}: integers must lie in [0, {high}), found {str(outside)[:30]} "
                        "(set high=... to widen)")
    return np.asarray(ints, dtype=np.int64)
