"""A Bernoulli restricted Boltzmann machine on binarized images (models/rbm.py).

Training is contrastive divergence: the positive phase uses the hidden probabilities of the
data, the negative phase k steps of block Gibbs sampling started at the data (CD-k) or at
persistent chains carried from step to step (PCD, Tieleman 2008; scikit-learn's
BernoulliRBM). Plain SGD, as in the papers and scikit-learn. The persistent chains are a
buffer of the "chains" module, so they are checkpointed and a resumed run equals an
uninterrupted one.

Evaluation on held-out images: the exact pseudo-log-likelihood (all pixels), the mean-field
reconstruction error, an annealed-importance-sampling *estimate* of the log-likelihood (a
stochastic lower-bias estimate, not an exact value), and FID of Gibbs samples in the digits
feature space beside the same numbers for an untrained RBM. Sampling: PNG grids of Gibbs
chains, one row per chain, from noise and from held-out images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..engine.config import TrainConfig
from ..errors import ConfigError
from ..models.rbm import RBM
from ..outputs import Bundle, Images
from .base import SampleOptions
from .image_base import ImageRecipe

EVAL_SEED = 12345


@dataclass
class Config(TrainConfig):
    dataset: str = "digits"         # digits (embedded 8x8) | mnist | fashion-mnist (or --data an image folder / IDX)
    image_size: int = 8             # side of the square images (px); visible units = image_size**2
    channels: int = 1               # the RBM models grey images
    val_fraction: float = 0.2       # held-out share
    threshold: float = 0.5          # pixels brighter than this (on [0, 1]) become 1
    hidden: int = 256               # hidden units (scikit-learn's n_components)
    k: int = 1                      # Gibbs steps of the negative phase (CD-k / PCD-k)
    persistent: bool = True         # PCD: negative chains persist across steps (False: CD-k from the data)
    epochs: int = 20                # passes over the training images (sets max_steps; 0 = use max_steps)
    max_steps: int = 3000
    batch_size: int = 10
    lr: float = 0.05                # SGD learning rate
    eval_every: int = 0
    save_every: int = 0
    ais_chains: int = 100           # AIS runs of the log Z estimate
    ais_betas: int = 1000           # intermediate temperatures of each AIS run
    fid_samples: int = 500          # Gibbs samples scored by FID (0 = no FID)
    fid_gibbs_steps: int = 500      # Gibbs steps from noise before a sample is scored
    feature_steps: int = 0          # training steps of the metrics' feature net (0 = its default)
    threads: int = 1
    bounds = {"image_size": "[4, 64]", "threshold": "[0, 1]", "hidden": "[1, 100000]", "k": "[1, 10000]",
              "epochs": "[0, 100000]", "ais_chains": "[1, 100000]", "ais_betas": "[2, 1000000]",
              "fid_samples": "[0, 100000]", "fid_gibbs_steps": "[1, 1000000]", "feature_steps": "[0, inf)"}

    def check(self) -> None:
        if self.channels != 1:
            raise ConfigError("invalid config: the rbm models grey images (channels=1)")


@dataclass
class Sample(SampleOptions):
    n: int = 8                      # chains from noise and from held-out images (one row each)
    steps: int = 1000               # Gibbs steps per chain
    snapshots: int = 10             # states shown per chain (evenly spaced in log steps)

    def check(self) -> None:
        if self.steps < 1 or self.snapshots < 1:
            raise ConfigError("steps and snapshots must be >= 1")


class Chains(nn.Module):
    """The persistent negative chains (a buffer: checkpointed with the weights)."""

    def __init__(self, n: int, n_visible: int):
        super().__init__()
        self.register_buffer("v", torch.zeros(n, n_visible))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))


class RBMRecipe(ImageRecipe):
    name = "rbm"
    Config = Config
    Sample = Sample
    presets = {"cd1": {"persistent": False, "k": 1}, "cd10": {"persistent": False, "k": 10}}

    @property
    def n_visible(self) -> int:
        return self.config.image_size ** 2

    def build_modules(self) -> dict[str, nn.Module]:
        c = self.config
        torch.manual_seed(c.seed)
        return {"model": RBM(self.n_visible, c.hidden), "chains": Chains(c.batch_size, self.n_visible)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.SGD(self.modules["model"].parameters(), lr=self.config.lr)}

    # -- data ------------------------------------------------------------------------------------------
    def binary(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images (N, 1, H, W) -> binary rows (N, H*W)."""
        return ((images.flatten(1).float() + 1) / 2 > self.config.threshold).float()

    def prepare_data(self) -> None:
        self.load_checked_images()
        self.train_v, self.val_v = self.binary(self.data.train), self.binary(self.data.val)

    def show_data(self, n: int | None = None) -> Images:
        """The first n (16 by default) training images as the RBM sees them: binarized."""
        self.load_data_once()
        v = self.train_v[:n or 16]
        return Images.from_float(self.as_images(v), name="data",
                                 title=f"training images binarized at {self.config.threshold} ({self.domain})")

    def batch(self, index: int) -> dict:
        v = self.train_v[self.batch_indices(index, len(self.train_v))]
        return {"v": v.to(self.device), "rng": self.step_rng(index, stream=1 + self.dist.rank)}

    def training_step(self, batch: dict, step: int) -> dict[str, float]:
        c, rbm, chains = self.config, self.train_modules["model"], self.modules["chains"]
        v, g = batch["v"], batch["rng"]
        if c.persistent:
            if not chains.started:  # the chains start at the first batch, as in scikit-learn
                chains.v.copy_(v)
                chains.started.fill_(True)
            start = chains.v
        else:
            start = v
        v_model = self.modules["model"].gibbs(start, c.k, generator=g)
        if c.persistent:
            chains.v.copy_(v_model)
        loss = rbm.cd_loss(v, v_model)
        self.optimize("model", loss)
        return {"free_energy_gap": loss.item()}

    # -- evaluation ------------------------------------------------------------------------------------
    def log_z(self, rbm: RBM) -> float:
        c = self.config
        p = self.train_v.mean(0).clamp(1e-3, 1 - 1e-3)  # base model: the pixels' marginals
        return rbm.ais_log_z(c.ais_chains, c.ais_betas, base_bias=torch.log(p / (1 - p)),
                             generator=torch.Generator().manual_seed(EVAL_SEED))

    def gibbs_samples(self, rbm: RBM, n: int, steps: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(EVAL_SEED)
        v = torch.bernoulli(torch.full((n, self.n_visible), 0.5), generator=g)
        h = torch.bernoulli(rbm.hidden_probs(rbm.gibbs(v, steps - 1, generator=g)), generator=g)
        return rbm.visible_probs(h)  # the last step's probabilities: a cleaner picture than a binary draw

    def scores(self, rbm: RBM, prefix: str = "") -> dict[str, float]:
        c, v = self.config, self.val_v
        out = {"pseudo_log_likelihood": float(rbm.pseudo_log_likelihood(v).mean()),
               "reconstruction_mse": float(rbm.reconstruction_error(v)),
               "ais_log_likelihood": float(-rbm.free_energy(v).mean()) - self.log_z(rbm)}
        if c.fid_samples:
            fake = self.gibbs_samples(rbm, c.fid_samples, c.fid_gibbs_steps)
            out["fid"] = self.quality(self.as_images(v), self.as_images(fake)).get("fid", math.nan)
        return {prefix + k: val for k, val in out.items()}

    def evaluate(self) -> dict[str, float]:
        self.load_data_once()
        out = self.scores(self.modules["model"])
        torch.manual_seed(self.config.seed)  # the untrained RBM this run started from
        out.update(self.scores(RBM(self.n_visible, self.config.hidden), prefix="untrained_"))
        return out

    # -- sampling ----------------------------------------------------------------------------------------
    def as_images(self, v: torch.Tensor) -> torch.Tensor:
        s = self.config.image_size
        return v.reshape(-1, 1, s, s) * 2 - 1

    def chain_pictures(self, start: torch.Tensor, opts: Sample, g: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        """(chains x snapshots) visible probabilities, snapshots at log-spaced steps."""
        rbm = self.modules["model"]
        marks = sorted({max(1, round(opts.steps ** (i / max(1, opts.snapshots - 1))))
                        for i in range(opts.snapshots)} | {opts.steps})
        frames, v, done = [start], start, 0
        for m in marks:
            v = rbm.gibbs(v, m - done - 1, generator=g) if m - done > 1 else v
            h = torch.bernoulli(rbm.hidden_probs(v), generator=g)
            p = rbm.visible_probs(h)
            frames.append(p)
            v, done = torch.bernoulli(p, generator=g), m
        grid = torch.stack(frames, 1)  # (chains, snapshots + 1, D)
        return grid, ["start"] + [f"step {m}" for m in marks]

    def generate(self, opts: Sample) -> Bundle:
        """Gibbs chains as two PNG grids (one chain per row, its state after 1, ..., steps steps):
        from uniform noise, and from held-out images."""
        opts.check()
        self.load_data_once()
        g = torch.Generator().manual_seed(opts.seed)
        noise = torch.bernoulli(torch.full((opts.n, self.n_visible), 0.5), generator=g)
        data = self.val_v[torch.randperm(len(self.val_v), generator=g)[:opts.n]]
        parts = {}
        for name, start in (("from_noise", noise), ("from_data", data)):
            grid, cols = self.chain_pictures(start, opts, g)
            images = self.as_images(grid.reshape(-1, self.n_visible))
            parts[name] = Images.from_float(images.clamp(-1, 1), ncol=len(cols), col_labels=cols,
                                            name=f"chains-{name.replace('_', '-')}",
                                            title=f"Gibbs chains {name.replace('_', ' ')}: one chain per row "
                                                  "(pixel probabilities)")
        return Bundle(parts)

