"""Image GANs: a fully connected GAN (gan-mlp), DCGAN (dcgan) and a conditional WGAN-GP (cgan).

gan-mlp and dcgan train with the non-saturating GAN loss (BCE on logits); cgan trains a
critic with the Wasserstein loss and gradient penalty (Gulrajani et al. 2017), `n_critic`
critic steps per generator step, labels one-hot into the generator and as constant extra
channels into the critic. Two additions beyond the book make its default meet its measured
bar: real images paired with a wrong label count as fakes for the critic (Reed et al. 2016),
and samples come from an exponential moving average of the generator's weights.

Fixes over the reference books: the N(0, 0.02) init is actually applied (inside the
model constructors); batches wrap across epochs, so there is never a partial last batch
(and a data set smaller than one batch still trains); sampling runs in eval mode; fakes
are detached (generated under no_grad) in discriminator/critic steps; the discriminator
returns logits and the loss applies the sigmoid (numerically stable).
"""
from __future__ import annotations

import abc
import copy
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine.config import TrainConfig
from ..engine.ema import ema_decay, ema_update
from ..errors import ConfigError, DataError
from ..models.gan import (DCGANConfig, DCGANDiscriminator, DCGANGenerator, DenseDiscriminator, DenseGANConfig,
                          DenseGenerator, n_doublings)
from .base import Recipe, SampleOptions
from .image_data import ImageData, load_image_dataset


# ---------------------------------------------------------------------------------------------
# Losses (pure functions: tested directly)
# ---------------------------------------------------------------------------------------------
def gradient_penalty(scores: torch.Tensor, interp: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty E[(||d critic / d x||_2 - 1)^2] on interpolates `interp` (requires_grad),
    given the critic's `scores` on them. create_graph=True: the penalty is itself trained."""
    (grad,) = torch.autograd.grad(scores.sum(), interp, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def wgan_gp_critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None,
                        eps: torch.Tensor, gp_weight: float, autocast: Any = None,
                        wrong_labels: torch.Tensor | None = None, mismatch_weight: float = 0.0
                        ) -> tuple[torch.Tensor, dict[str, float]]:
    """Critic loss E[C(fake)] - E[C(real)] + gp_weight * GP.

    With wrong_labels and mismatch_weight w > 0 (a conditional critic), real images paired with
    a wrong label count as fakes too (the matching-aware discriminator of Reed et al. 2016):
    the "fake" term becomes (1 - w) E[C(fake, y)] + w E[C(real, y_wrong)], which teaches the
    critic what the label means, not only what a face looks like.

    Real, fake and the interpolates (and the mismatched reals) go through the critic in ONE
    forward (DDP allows one forward per backward) and are split afterwards. `fake` must be detached.
    """
    n = real.shape[0]
    interp = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    mismatch = labels is not None and wrong_labels is not None and mismatch_weight > 0
    x = torch.cat([real, fake, interp] + ([real] if mismatch else []))
    y = None if labels is None else torch.cat([labels, labels, labels] + ([wrong_labels] if mismatch else []))
    import contextlib

    with (autocast or contextlib.nullcontext()):
        scores = (critic(x) if y is None else critic(x, y)).float()
    s_real, s_fake, s_interp = scores[:n], scores[n:2 * n], scores[2 * n:3 * n]
    gp = gradient_penalty(s_interp, interp)
    w_dist = s_real.mean() - s_fake.mean()
    logs = {"w_distance": w_dist.item()}
    if mismatch:
        s_wrong = scores[3 * n:]
        negatives = (1 - mismatch_weight) * s_fake.mean() + mismatch_weight * s_wrong.mean()
        loss = negatives - s_real.mean() + gp_weight * gp
        logs["label_margin"] = (s_real.mean() - s_wrong.mean()).item()
    else:
        loss = -w_dist + gp_weight * gp
    return loss, {"critic_loss": loss.item(), **logs, "gp": gp.item()}


def bce_gan_step(recipe: Recipe, real: torch.Tensor, z_d: torch.Tensor, z_g: torch.Tensor) -> dict[str, float]:
    """One discriminator then one generator update with the non-saturating loss; real and the
    detached fakes go through D in one forward (one forward per backward under DDP)."""
    G, D = recipe.train_modules["generator"], recipe.train_modules["discriminator"]
    n = real.shape[0]
    target = torch.cat([torch.ones(n), torch.zeros(z_d.shape[0])]).to(real.device)
    with torch.no_grad():
        fake = G(z_d)
    with recipe.autocast():
        d_logits = D(torch.cat([real, fake.to(real.dtype)])).float()
    d_loss = F.binary_cross_entropy_with_logits(d_logits, target)
    recipe.optimize("discriminator", d_loss)
    # The generator step shows D the same real+fake mix as the D step: with batch norm in D, a
    # fake-only batch would be normalised differently from what D was trained on.
    with recipe.autocast():
        g_logits = D(torch.cat([real, G(z_g).to(real.dtype)])).float()[n:]
    g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
    recipe.optimize("generator", g_loss)
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(),
            "d_real": torch.sigmoid(d_logits[:n]).mean().item(), "d_fake": torch.sigmoid(d_logits[n:]).mean().item()}


# ---------------------------------------------------------------------------------------------
# Shared config and recipe base
# ---------------------------------------------------------------------------------------------
@dataclass
class ImageGANConfig(TrainConfig):
    dataset: str = "faces"       # embedded default: faces | digits | mnist | fashion-mnist; ignored with --data
    image_size: int = 32
    channels: int = 3
    n_train: int = 6000          # faces: images rendered (train + held-out); folders: max images (0 = all)
    val_fraction: float = 0.1    # held-out share (FID/KID reference)
    latent_dim: int = 100
    epochs: int = 0              # > 0: max_steps = epochs x ceil(train images / batch_size)
    beta1: float = 0.5           # Adam betas (DCGAN: 0.5, 0.999)
    beta2: float = 0.999
    d_lr: float = 0.0            # discriminator/critic lr; 0 = same as lr
    ema_decay: float = 0.999     # > 0: sample from an exponential moving average of the generator (0 = off)
    eval_samples: int = 500      # generated images for FID/KID/precision/recall
    batch_size: int = 64
    lr: float = 2e-4
    save_every: int = 500
    eval_every: int = 0
    log_every: int = 25

    def check(self) -> None:
        if self.image_size < 4 or self.channels not in (1, 3):
            raise ConfigError("invalid config: need image_size >= 4 and channels 1 or 3")
        if self.latent_dim < 1 or self.eval_samples < 10:
            raise ConfigError("invalid config: need latent_dim >= 1 and eval_samples >= 10")
        if self.epochs < 0:
            raise ConfigError("invalid config: epochs must be >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError("invalid config: ema_decay must be in [0, 1) (0 = no EMA generator)")
        if self.grad_accum != 1:  # D and G step alternately: accumulating would mix their gradients
            raise ConfigError("invalid config: GAN recipes need grad_accum=1 (raise batch_size instead)")


@dataclass
class ImageSample(SampleOptions):
    n: int = 64
    mode: str = "grid"           # grid | interpolate (latent interpolation strips)
    steps: int = 8               # images per interpolation strip

    def check(self) -> None:
        check_sample(self)
        if self.mode not in ("grid", "interpolate"):
            raise ConfigError(f"unknown sample mode {self.mode!r} (grid or interpolate)")


class ImageGANRecipe(Recipe):
    """Data, batches, evaluation and sampling shared by the unconditional and conditional GANs."""

    # -- data --------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        c = self.config
        self.data: ImageData = load_image_dataset(self.data_config())
        n = len(self.data.train)
        if c.epochs > 0:  # the books count epochs; the trainer counts steps
            c.max_steps = c.epochs * math.ceil(n / c.batch_size)
        self.train_x = self.data.train
        self.train_y = self.data.train_labels

    def data_config(self) -> ImageGANConfig:
        return self.config

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        c = self.config
        idx = self.batch_indices(index, len(self.train_x))
        z = torch.randn(2, c.batch_size, c.latent_dim, generator=self.step_rng(index))
        out = {"real": to_float(self.train_x[idx]), "z_d": self.shard(z[0]), "z_g": self.shard(z[1])}
        return {k: v.to(self.device) for k, v in out.items()}

    # -- model ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def build_networks(self) -> dict[str, nn.Module]:
        """The trained networks: "generator" and "discriminator" or "critic"."""

    def build_modules(self) -> dict[str, nn.Module]:
        modules = self.build_networks()
        if self.config.ema_decay > 0:  # the sampling copy: moved by update_ema, never by an optimizer
            ema = copy.deepcopy(modules["generator"])
            modules["generator_ema"] = ema.requires_grad_(False)
        return modules

    def update_ema(self, step: int) -> None:
        """Call after every generator update."""
        if "generator_ema" in self.modules:
            ema_update(self.modules["generator_ema"], self.modules["generator"], ema_decay(step, self.config.ema_decay))

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """gan-mlp and dcgan: one non-saturating D then G update (cgan has its own WGAN-GP step)."""
        logs = bce_gan_step(self, batch["real"], batch["z_d"], batch["z_g"])
        self.update_ema(step)
        return logs

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.beta1, c.beta2)
        d_name = "critic" if "critic" in self.modules else "discriminator"
        return {d_name: torch.optim.Adam(self.modules[d_name].parameters(), lr=c.d_lr or c.lr, betas=betas),
                "generator": torch.optim.Adam(self.modules["generator"].parameters(), lr=c.lr, betas=betas)}

    # -- sampling --------------------------------------------------------------------------------
    def latents(self, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.config.latent_dim, generator=g).to(self.device)

    def generator_images(self, z: torch.Tensor, labels: torch.Tensor | None = None, chunk: int = 256) -> torch.Tensor:
        """Images (float NCHW in [-1, 1], CPU) from latents, in chunks (eval mode: set by the caller).
        The EMA generator when there is one."""
        G = self.modules["generator_ema" if "generator_ema" in self.modules else "generator"]
        outs = []
        for i in range(0, len(z), chunk):
            args = (z[i:i + chunk],) if labels is None else (z[i:i + chunk], labels[i:i + chunk].to(self.device))
            outs.append(G(*args).float().cpu())
        return torch.cat(outs) if outs else torch.zeros(0)

    def generate(self, opts: ImageSample) -> torch.Tensor:
        """(n, C, H, W) float images in [-1, 1]."""
        opts.check()
        return self.generator_images(self.latents(opts.n, opts.seed))

    def write_samples(self, out_dir: Path, opts: ImageSample) -> list[Path]:
        opts.check()
        from ..data.images import save_image_grid

        out_dir.mkdir(parents=True, exist_ok=True)
        if opts.mode == "grid":
            imgs = self.generate(opts)
            return [save_image_grid(imgs, out_dir / "samples.png", nrow=grid_cols(len(imgs)))]
        rows = max(1, min(opts.n, 8))
        ends = self.latents(2 * rows, opts.seed).view(2, rows, -1)
        z = slerp(ends[0], ends[1], torch.linspace(0, 1, opts.steps))        # (rows, steps, d)
        imgs = self.generator_images(z.reshape(rows * opts.steps, -1))
        return [save_image_grid(imgs, out_dir / "interpolation.png", nrow=opts.steps)]

    # -- evaluation ---------------------------------------------------------------------------------
    def feature_net(self) -> Any:
        from ..metrics.feature_net import get_feature_net

        if getattr(self, "_net", None) is None:
            c = self.config
            self._net = get_feature_net(self.data.domain, c.image_size, c.channels)
        return self._net

    def quality(self, fake: torch.Tensor, prefix: str = "", real: torch.Tensor | None = None) -> dict[str, float]:
        """FID/KID/precision/recall of `fake` against held-out images."""
        from ..metrics.image import quality_report

        # training images are the other real images of the real-vs-real floor
        other = to_float(self.data.train[:len(fake)]) if real is None else None
        real = to_float(self.data.val) if real is None else real
        if min(len(real), len(fake)) < 4:  # a tiny folder: too few held-out images for these statistics
            return {}
        rep = quality_report(real, fake, self.feature_net(), other_real=other)
        return {f"{prefix}{k}": float(v) for k, v in rep.items()}

    def evaluate(self) -> dict[str, float]:
        self.load_data_once()
        c = self.config
        return self.quality(self.generator_images(self.latents(c.eval_samples, 12345)))


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> float in [-1, 1] (float input passes through)."""
    return x.float().div(127.5).sub(1.0) if x.dtype == torch.uint8 else x.float()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent rows a and b (rows, d) at fractions t (steps,) ->
    (rows, steps, d); stays on the Gaussian shell where linear interpolation would shrink norms."""
    a, b, t = a[:, None, :], b[:, None, :], t.to(a)[None, :, None]
    cos = (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def grid_cols(n: int) -> int:
    return max(1, min(n, int(math.ceil(math.sqrt(n)))))


def check_sample(opts: SampleOptions) -> None:
    if opts.n < 1:
        raise ConfigError(f"sample n must be >= 1, got {opts.n}")
    if getattr(opts, "steps", 2) < 2:
        raise ConfigError("sample steps must be >= 2")


# ---------------------------------------------------------------------------------------------
# gan-mlp
# ---------------------------------------------------------------------------------------------
@dataclass
class MLPGANConfig(ImageGANConfig):
    dataset: str = "auto"        # auto = Fashion-MNIST when installed, else sklearn digits upscaled to 28
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 64
    hidden: tuple[int, ...] = (256, 512)
    dropout: float = 0.3
    max_steps: int = 3000

    def check(self) -> None:
        super().check()
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError("invalid config: hidden must list positive layer widths")


class MLPGANRecipe(ImageGANRecipe):
    name = "gan-mlp"
    summary = "fully connected GAN for small greyscale images (28x28); metrics: FID/KID/precision/recall"
    default_data = "Fashion-MNIST if installed, else scikit-learn 8x8 digits upscaled to 28x28 (MNIST: --data DIR)"
    Config = MLPGANConfig
    Sample = ImageSample
    presets = {"book": {"latent_dim": 100, "hidden": (256, 512, 1024), "batch_size": 64, "lr": 1e-4,
                        "epochs": 50, "n_train": 60000}}

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        torch.manual_seed(c.seed)
        cfg = DenseGANConfig(c.image_size, c.channels, c.latent_dim, tuple(c.hidden), c.dropout)
        return {"generator": DenseGenerator(cfg), "discriminator": DenseDiscriminator(cfg)}

    def data_config(self) -> MLPGANConfig:
        c = self.config
        if c.dataset != "auto" or c.data:
            return c
        from ..data.idx import find_fashion_mnist

        return dataclasses.replace(c, dataset="fashion-mnist" if find_fashion_mnist() else "digits")


# ---------------------------------------------------------------------------------------------
# dcgan
# ---------------------------------------------------------------------------------------------
@dataclass
class DCGANRecipeConfig(ImageGANConfig):
    g_width: int = 32
    d_width: int = 32
    batch_size: int = 32
    max_steps: int = 3000        # ~4 min on one idle core (FID 217 at 1,200 steps, 135 at 3,000)

    def check(self) -> None:
        super().check()
        try:
            n_doublings(self.image_size)
        except ValueError as e:
            raise ConfigError(f"invalid config: {e}") from None


class DCGANRecipe(ImageGANRecipe):
    name = "dcgan"
    summary = "DCGAN (transposed convs + batch norm) on images; metrics: FID/KID/precision/recall"
    default_data = "procedural 32x32 faces (any image folder with --data)"
    Config = DCGANRecipeConfig
    Sample = ImageSample
    presets = {"book": {"image_size": 64, "g_width": 64, "d_width": 64, "latent_dim": 100, "batch_size": 128,
                        "lr": 2e-4, "epochs": 100, "n_train": 20000}}

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        torch.manual_seed(c.seed)
        cfg = DCGANConfig(c.image_size, c.channels, c.latent_dim, 0, c.g_width, c.d_width, "batch")
        return {"generator": DCGANGenerator(cfg), "discriminator": DCGANDiscriminator(cfg)}


# ---------------------------------------------------------------------------------------------
# cgan: conditional WGAN-GP
# ---------------------------------------------------------------------------------------------
@dataclass
class CGANConfig(DCGANRecipeConfig):
    attribute: str = "glasses"    # embedded faces: label 1 = has the attribute, 0 = has not
    n_critic: int = 5             # critic steps per generator step (book: 5)
    gp_weight: float = 10.0       # gradient-penalty weight (lambda)
    # > 0: real images with a wrong label count as fakes for the critic (not in the book; without
    # it the label-channel critic learned the label so slowly that 16 px runs showed the requested
    # attribute in 84-89% of samples, with it 99.5% after 500 steps: BENCHMARKS.md)
    mismatch_weight: float = 0.5
    critic_norm: str = "layer"    # layer | none (no batch norm: it breaks the per-sample penalty)
    image_size: int = 16          # CPU default (the GP's double backward is costly); book: 64
    latent_dim: int = 32
    batch_size: int = 64
    beta1: float = 0.5            # WGAN-GP paper / book preset: Adam(1e-4, 0, 0.9)
    beta2: float = 0.9
    lr: float = 2e-4
    max_steps: int = 1500

    def check(self) -> None:
        super().check()
        if self.n_critic < 1 or self.gp_weight < 0:
            raise ConfigError("invalid config: need n_critic >= 1 and gp_weight >= 0")
        if not 0.0 <= self.mismatch_weight < 1.0:
            raise ConfigError("invalid config: mismatch_weight must be in [0, 1)")
        if self.critic_norm not in ("layer", "none"):
            raise ConfigError("invalid config: critic_norm must be layer or none (batch norm breaks the "
                              "gradient penalty)")


@dataclass
class CGANSample(SampleOptions):
    n: int = 32
    mode: str = "grid"    # grid (same latents at every label) | label | interpolate | arithmetic
    label: int = 1        # mode=label: the class to generate; interpolate: the end label
    source_label: int = 0 # interpolate / arithmetic: the start label
    steps: int = 8

    def check(self) -> None:
        check_sample(self)
        if self.mode not in ("grid", "label", "interpolate", "arithmetic"):
            raise ConfigError(f"unknown sample mode {self.mode!r} for cgan (grid, label, interpolate or arithmetic)")


class CGANRecipe(ImageGANRecipe):
    name = "cgan"
    summary = ("conditional WGAN-GP (labels into generator and critic); metrics: FID/KID, "
               "share of samples showing the requested attribute")
    default_data = "procedural 16x16 faces labelled glasses / no glasses (image folder: sub-folders are classes)"
    Config = CGANConfig
    Sample = CGANSample
    presets = {"book": {"image_size": 64, "g_width": 64, "d_width": 64, "latent_dim": 100, "batch_size": 64,
                        "lr": 1e-4, "beta1": 0.0, "beta2": 0.9, "n_critic": 5, "gp_weight": 10.0, "epochs": 100,
                        "n_train": 20000}}

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def load_artifacts(self, run_dir: Path) -> None:
        import json

        p = Path(run_dir) / "labels.json"
        if p.is_file():
            self.label_names = json.loads(p.read_text(encoding="utf-8"))["labels"]

    def save_artifacts(self, run_dir: Path) -> None:
        import json

        from ..engine.io import write_text

        write_text(Path(run_dir) / "labels.json", json.dumps({"labels": list(self.label_names)}))

    def prepare_data(self) -> None:
        super().prepare_data()
        d, c = self.data, self.config
        if d.multi_label:  # faces: one attribute becomes the two classes
            if c.attribute not in d.label_names:
                raise ConfigError(f"unknown face attribute {c.attribute!r} (known: {', '.join(d.label_names)})")
            col = d.label_names.index(c.attribute)
            self.train_y, self.val_y = d.train_labels[:, col].long(), d.val_labels[:, col].long()
            self.label_names = [f"no {c.attribute}", c.attribute]
        else:
            self.train_y, self.val_y = d.train_labels.long(), d.val_labels.long()
            self.label_names = list(d.label_names)
        if len(self.label_names) < 2 or len(torch.unique(self.train_y)) < 2:
            raise DataError("cgan needs images of at least 2 classes (sub-folders of the image folder)")

    def build_networks(self) -> dict[str, nn.Module]:
        c = self.config
        if not getattr(self, "label_names", None):
            self.load_data_once()
        torch.manual_seed(c.seed)
        cfg = DCGANConfig(c.image_size, c.channels, c.latent_dim, self.n_classes, c.g_width, c.d_width, c.critic_norm)
        return {"generator": DCGANGenerator(cfg), "critic": DCGANDiscriminator(cfg)}

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels.long(), self.n_classes).float()

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        """n_critic real batches (global batches index*n_critic ... +n_critic-1) and their noise."""
        c = self.config
        k = c.n_critic
        idx = [self.batch_indices(index * k + j, len(self.train_x)) for j in range(k)]
        g = self.step_rng(index)
        z = torch.randn(k + 1, c.batch_size, c.latent_dim, generator=g)
        eps = torch.rand(k, c.batch_size, 1, 1, 1, generator=g)
        # a wrong label for every real image: its own label shifted by 1..n_classes-1
        shift = torch.randint(1, self.n_classes, (k, c.batch_size), generator=g)
        out = {"real": torch.stack([to_float(self.train_x[i]) for i in idx]),
               "labels": torch.stack([self.one_hot(self.train_y[i]) for i in idx]),
               "wrong_labels": torch.stack([self.one_hot((self.train_y[i] + self.shard(s)) % self.n_classes)
                                            for i, s in zip(idx, shift)]),
               "z": torch.stack([self.shard(zz) for zz in z]),
               "eps": torch.stack([self.shard(e) for e in eps])}
        return {key: v.to(self.device) for key, v in out.items()}

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        c = self.config
        G, C = self.train_modules["generator"], self.train_modules["critic"]
        logs: dict[str, float] = {}
        for j in range(c.n_critic):
            real, y = batch["real"][j], batch["labels"][j]
            with torch.no_grad():  # detached fakes: the critic step must not touch G
                fake = G(batch["z"][j], y).to(real.dtype)
            loss, logs = wgan_gp_critic_loss(C, real, fake, y, batch["eps"][j], c.gp_weight, self.autocast(),
                                             batch["wrong_labels"][j], c.mismatch_weight)
            self.optimize("critic", loss)
        y = batch["labels"][-1]
        with self.autocast():
            g_loss = -C(G(batch["z"][-1], y), y).float().mean()
        self.optimize("generator", g_loss)
        self.update_ema(step)
        return {**logs, "g_loss": g_loss.item()}

    # -- sampling ---------------------------------------------------------------------------------
    def check_label(self, label: int) -> None:
        if not 0 <= label < self.n_classes:
            raise ConfigError(f"label {label} out of range: this model has {self.n_classes} classes "
                              f"({', '.join(f'{i}={n}' for i, n in enumerate(self.label_names))})")

    def generate(self, opts: CGANSample) -> torch.Tensor:
        """Images of class `opts.label` (n, C, H, W) in [-1, 1]."""
        opts.check()
        self.check_label(opts.label)
        labels = self.one_hot(torch.full((opts.n,), opts.label))
        return self.generator_images(self.latents(opts.n, opts.seed), labels)

    def write_samples(self, out_dir: Path, opts: CGANSample) -> list[Path]:
        from ..data.images import save_image_grid

        opts.check()
        out_dir.mkdir(parents=True, exist_ok=True)
        k = self.n_classes
        if opts.mode == "label":
            imgs = self.generate(opts)
            return [save_image_grid(imgs, out_dir / f"label-{opts.label}.png", nrow=grid_cols(len(imgs)))]
        if opts.mode == "grid":  # the same latents under every label: one row per class
            cols = max(1, min(opts.n, 16))
            z = self.latents(cols, opts.seed).repeat(k, 1)
            labels = self.one_hot(torch.arange(k).repeat_interleave(cols))
            return [save_image_grid(self.generator_images(z, labels), out_dir / "samples.png", nrow=cols)]
        self.check_label(opts.label)
        self.check_label(opts.source_label)
        y0, y1 = self.one_hot(torch.tensor([opts.source_label]))[0], self.one_hot(torch.tensor([opts.label]))[0]
        t = torch.linspace(0, 1, opts.steps)
        if opts.mode == "interpolate":
            rows = max(1, min(opts.n, 8))
            z = self.latents(2 * rows, opts.seed).view(2, rows, -1)
            # label interpolation: fixed latent per row, label moves from source_label to label
            zl = z[0][:, None, :].expand(rows, opts.steps, -1).reshape(-1, self.config.latent_dim)
            yl = torch.lerp(y0, y1, t[:, None]).repeat(rows, 1)
            p1 = save_image_grid(self.generator_images(zl, yl), out_dir / "label-interpolation.png", nrow=opts.steps)
            # latent interpolation: label fixed (source_label), latent moves between two draws
            zz = slerp(z[0], z[1], t).reshape(-1, self.config.latent_dim)
            yz = y0.repeat(len(zz), 1)
            p2 = save_image_grid(self.generator_images(zz, yz), out_dir / "latent-interpolation.png",
                                 nrow=opts.steps)
            # the book's 2-D grid: latent interpolation down, label interpolation across
            zs = slerp(z[0][:1], z[1][:1], t)[0]                         # (steps, d)
            zg = zs[:, None, :].expand(-1, opts.steps, -1).reshape(-1, self.config.latent_dim)
            yg = torch.lerp(y0, y1, t[:, None]).repeat(opts.steps, 1)
            p3 = save_image_grid(self.generator_images(zg, yg), out_dir / "interpolation-grid.png", nrow=opts.steps)
            return [p1, p2, p3]
        return [self._arithmetic(out_dir, opts, y0, y1)]  # mode == "arithmetic"

    def _arithmetic(self, out_dir: Path, opts: CGANSample, y0: torch.Tensor, y1: torch.Tensor) -> Path:
        """Attribute-vector arithmetic in the generator's input space (latent + label), one row each:
        A = (z_a, label), B = (z_b, source_label), C = (z_c, source_label), and A - B + C, which
        carries A's attribute over to C's face. Latent sums are rescaled to unit variance."""
        from ..data.images import save_image_grid

        rows = max(1, min(opts.n, 8))
        d = self.config.latent_dim
        za, zb, zc = self.latents(3 * rows, opts.seed).view(3, rows, d)
        zr = (za - zb + zc) / math.sqrt(3)
        yr = y1.expand(rows, -1)  # label part: y1 - y0 + y0
        z = torch.stack([za, zb, zc, zr], 1).reshape(-1, d)
        y = torch.stack([y1.expand(rows, -1), y0.expand(rows, -1), y0.expand(rows, -1), yr], 1).reshape(-1, len(y0))
        return save_image_grid(self.generator_images(z, y), out_dir / "arithmetic.png", nrow=4)

    # -- evaluation ----------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        self.load_data_once()
        c = self.config
        n = c.eval_samples
        z = self.latents(n, 12345)
        val_y = self.val_y
        # labels in the held-out proportions, so FID compares like with like
        y = val_y[torch.randint(len(val_y), (n,), generator=torch.Generator().manual_seed(1))]
        out = self.quality(self.generator_images(z, self.one_hot(y)))
        clf = self.attribute_classifier()
        if clf is not None:
            clf_column(clf, c.attribute)
            accs, faces = [], []
            for label in (0, 1):
                imgs = self.generator_images(z, self.one_hot(torch.full((n,), label)))
                s = clf.score(imgs, c.attribute, label)   # a non-face counts as a failure
                accs.append(s["attribute_acc"])
                faces.append(s["face_rate"])
                out[f"attribute_acc_label{label}"] = accs[-1]
                out[f"face_rate_label{label}"] = faces[-1]
            out["attribute_acc"] = float(np.mean(accs))
            out["face_rate"] = float(np.mean(faces))
        return out

    def attribute_classifier(self) -> Any:
        """The faces attribute classifier when the labels are a faces attribute; else None."""
        if not self.data.multi_label or self.data.domain != "faces":
            return None
        from ..metrics.feature_net import get_attribute_classifier

        return get_attribute_classifier(self.config.image_size)


def clf_column(clf: Any, attribute: str) -> int:
    from ..data.faces import ATTRIBUTES

    names = list(getattr(clf, "attributes", ATTRIBUTES))
    if attribute not in names:
        raise ConfigError(f"unknown face attribute {attribute!r} (known: {', '.join(names)})")
    return names.index(attribute)
