"""The image family base: what gan-mlp, dcgan, cgan, cyclegan, autoencoder, vae and diffusion share.

`ImageRecipe` holds the data (data.image_datasets), the metrics' feature network (FID, KID,
precision, recall in genlab's own feature space: metrics.feature_net), the faces attribute
judge, the EMA copies of trained networks, `epochs` -> steps, and the step from float images to
the typed `Images` output that writes the pictures.

`ImageGANRecipe` adds what the three latent-to-image GANs (gan-mlp, dcgan, cgan) share: their
config, latents, the (EMA) generator in chunks, Adam for D/critic and G, the non-saturating
BCE step and sampling a grid or latent interpolation strips.
"""
from __future__ import annotations

import abc
import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..data.image_datasets import DATASETS, ImageData, load_image_dataset
from ..engine.config import TrainConfig
from ..engine.ema import ema_decay, ema_update
from ..errors import ConfigError
from ..models.gan import n_doublings, slerp
from ..models.losses import bce_discriminator_loss, bce_generator_loss
from ..outputs import Images
from .base import Recipe, SampleOptions

EVAL_SEED = 12345         # latents of the generated images that evaluation scores (fixed: comparable runs)
MIN_HELD_OUT = 4          # fewer held-out or generated images than this: no FID/KID (statistics meaningless)


class ImageRecipe(Recipe):
    """Data, metrics, attribute judge, EMA and pictures of every image recipe."""

    data: ImageData
    domain: str = ""      # the feature net's domain: faces, digits, mnist, fashion-mnist or a data path
    # EMA module name -> the trained module it follows (built by with_ema, moved by update_ema)
    ema_of: ClassVar[dict[str, str]] = {}
    # one-network recipes (autoencoder, vae): the network class, built from config.model_config()
    network: ClassVar[Any] = None

    def build_modules(self) -> dict[str, nn.Module]:
        torch.manual_seed(self.config.seed)
        return {"model": self.network(self.config.model_config())}

    # -- data ---------------------------------------------------------------------------------------
    def load_images(self, config: Any = None) -> ImageData:
        """The train / held-out images of the config's dataset or --data path."""
        self.data = load_image_dataset(config if config is not None else self.config)
        self.domain = self.data.domain
        return self.data

    def setup(self, training: bool, resume: bool = False) -> None:
        super().setup(training, resume)
        if training:
            self.apply_epochs()

    def epoch_size(self) -> int:
        """Training images per epoch (the larger domain for two-domain recipes)."""
        return len(self.data.train)

    def apply_epochs(self) -> None:
        """The books count epochs, the trainer counts steps: with `epochs` > 0, max_steps is set
        once, after the data is known and before training starts."""
        c = self.config
        if getattr(c, "epochs", 0) > 0:
            c.max_steps = c.epochs * math.ceil(self.epoch_size() / c.batch_size)

    def prepare_data(self) -> None:
        self.load_checked_images()

    def load_checked_images(self) -> ImageData:
        """load_images, and refuse data whose channels / size differ from the config's."""
        d, c = self.load_images(), self.config
        if d.channels != c.channels or d.image_size != c.image_size:
            raise ConfigError(f"data gave {d.channels}x{d.image_size}px images, config says "
                              f"{c.channels}x{c.image_size}px")
        return d

    def val_images(self) -> torch.Tensor:
        """The held-out images evaluation uses (the first `eval_images`, 0 = all)."""
        self.load_data_once()
        n = getattr(self.config, "eval_images", 0)
        return self.data.val[:n] if n else self.data.val

    # -- the data as users see it (genlab data) ---------------------------------------------------------
    def show_data(self, n: int | None = None) -> Images:
        """The first n training images (64 by default) captioned with their labels: the class, or
        the attributes a procedural face has."""
        self.load_data_once()
        x, y, names = self.data_examples()
        n = min(n or 64, len(x))
        return self.picture(x[:n], labels=caption_labels(y[:n], names), name="data",
                            title=f"{self.name}: {n} of {len(x)} training images ({self.data_source()})")

    def data_examples(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """(training images, their labels, the label names) as the recipe trains on them."""
        return self.data.train, self.data.train_labels, list(self.data.label_names)

    def data_source(self) -> str:
        return self.data.source or self.config.data or self.domain

    # -- evaluation ------------------------------------------------------------------------------------
    @staticmethod
    def reconstruction_metrics(x: torch.Tensor, recon: torch.Tensor) -> dict[str, float]:
        """Squared error per pixel and per image on the [0, 1] pixel scale."""
        err = ((recon.float() - x.float()) / 2) ** 2
        return {"mse_per_pixel": float(err.mean()), "mse_per_image": float(err.flatten(1).sum(1).mean())}

    def feature_net(self) -> Any:
        """The feature network of the metrics for this data (trained once, then cached on disk)."""
        from ..metrics.feature_net import get_feature_net

        if getattr(self, "_feature_net", None) is None:
            c = self.config
            self._feature_net = get_feature_net(self.domain, c.image_size, c.channels,
                                                steps=getattr(c, "feature_steps", 0) or None)
        return self._feature_net

    def quality(self, real: torch.Tensor, fake: torch.Tensor, prefix: str = "",
                other_real: torch.Tensor | None = None) -> dict[str, float]:
        """FID / KID / precision / recall of `fake` against `real` held-out images (float NCHW,
        or uint8 NCHW), with the sample sizes, a bootstrap FID interval and, given `other_real`
        (real images outside `real`: training images), the real-vs-real floor at the same sizes
        (metrics.image.quality_report); {} when either set is too small for these statistics."""
        from ..data.images import to_float
        from ..metrics.image import quality_report

        if min(len(real), len(fake)) < MIN_HELD_OUT:
            return {}
        other = None if other_real is None else to_float(other_real[:len(fake)])
        rep = quality_report(to_float(real), to_float(fake), self.feature_net(), other_real=other)
        return {f"{prefix}{k}": float(v) for k, v in rep.items()}

    def attribute_classifier(self) -> Any:
        """The judge of the procedural faces' attributes (metrics.feature_net), or None for other data."""
        if self.domain != "faces":
            return None
        from ..metrics.feature_net import get_attribute_classifier

        c = self.config
        return get_attribute_classifier(c.image_size, c.channels, steps=getattr(c, "feature_steps", 0) or None)

    def attribute_score(self, images: torch.Tensor, attribute: str, labels: Any) -> dict[str, float]:
        """{"attribute_acc": share of images the faces judge sees as faces showing labels[i] for
        `attribute` (a non-face is a failure), "face_rate": share it sees as faces}."""
        clf = self.attribute_classifier()
        if attribute not in clf.attributes:
            raise ConfigError(f"unknown face attribute {attribute!r} (known: {', '.join(clf.attributes)})")
        return clf.score(images, attribute, labels)

    # -- EMA ---------------------------------------------------------------------------------------------
    def with_ema(self, modules: dict[str, nn.Module], enabled: bool = True) -> dict[str, nn.Module]:
        """Add the EMA copies named in `ema_of`: frozen, moved by update_ema, never by an optimizer."""
        if enabled:
            for name, source in self.ema_of.items():
                modules[name] = copy.deepcopy(modules[source]).requires_grad_(False)
        return modules

    def update_ema(self, step: int) -> None:
        """Call after each optimizer step of the followed networks."""
        for name, source in self.ema_of.items():
            if name in self.modules:
                ema_update(self.modules[name], self.modules[source], ema_decay(step, self.config.ema_decay))

    # -- pictures -----------------------------------------------------------------------------------------
    @staticmethod
    def picture(images: torch.Tensor, **captions: Any) -> Images:
        """Float images in [-1, 1] (N, C, H, W) as the typed output (uint8), with grid captions."""
        return Images.from_float(images.float().cpu().clamp(-1, 1), **captions)


def caption_labels(labels: torch.Tensor, names: list[str]) -> list[str]:
    """One caption per image: its class name, or the names of its set 0/1 attributes (one a line)."""
    if labels.ndim == 2:
        return ["\n".join(names[j] for j in row.nonzero().flatten().tolist()) or "-" for row in labels]
    return [names[i] if 0 <= i < len(names) else str(i) for i in labels.tolist()]


def in_chunks(fn: Any, x: torch.Tensor, size: int) -> list[Any]:
    """fn over x in chunks of `size` (any N: the last chunk may be partial)."""
    return [fn(x[i:i + size]) for i in range(0, len(x), size)]


def stacked_rows(groups: list[torch.Tensor], names: list[str], per_row: int = 16
                 ) -> tuple[torch.Tensor, int, list[str]]:
    """Equal-length groups of images (inputs, reconstructions, edits...) laid out so each chunk
    of `per_row` shows one row per group, one above the other: (images, ncol, row captions).
    A short last chunk is padded with black to keep the columns aligned."""
    n = len(groups[0])
    ncol = min(per_row, n)
    rows, labels = [], []
    for i in range(0, n, per_row):
        for g, name in zip(groups, names):
            row = g[i:i + per_row]
            if len(row) < ncol:
                row = torch.cat([row, torch.full((ncol - len(row), *row.shape[1:]), -1.0)])
            rows.append(row)
            labels.append(name)
    return torch.cat(rows), ncol, labels


def steps_labels(steps: int) -> list[str]:
    """Column captions of an interpolation strip: the fraction walked, t = 0 ... 1."""
    return [f"t={i / (steps - 1):.2g}" for i in range(steps)]


# ---------------------------------------------------------------------------------------------------
# Autoencoders: autoencoder, vae
# ---------------------------------------------------------------------------------------------------
@dataclass
class ImageAEConfig(TrainConfig):
    """Keys shared by autoencoder and vae (data, evaluation)."""

    dataset: str = "digits"         # faces | digits | mnist | fashion-mnist (ignored with --data)
    image_size: int = 28            # side of the square images (px)
    channels: int = 1               # 1 (grey) or 3 (RGB)
    n_train: int = 0                # faces: faces rendered (0 = 6000); folders: max images (0 = all)
    val_fraction: float = 0.2       # held-out share of the data
    recon_loss: str = "auto"        # auto | bce | mse (auto: bce for 1-channel data, mse for RGB)
    eval_batch: int = 500           # images per forward pass at evaluation and sampling
    eval_images: int = 2000         # held-out images used by evaluate (0 = all)
    lr: float = 1e-3
    eval_every: int = 500
    save_every: int = 1000

    def check_common(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"invalid config: dataset must be one of {', '.join(DATASETS)}")
        if self.channels not in (1, 3):
            raise ConfigError("invalid config: channels must be 1 or 3")
        if self.image_size < 8:
            raise ConfigError("invalid config: image_size must be >= 8")
        if self.recon_loss not in ("auto", "bce", "mse"):
            raise ConfigError("invalid config: recon_loss must be auto, bce or mse")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError("invalid config: val_fraction must be in (0, 1)")
        if self.eval_batch < 1 or self.eval_images < 0 or self.n_train < 0:
            raise ConfigError("invalid config: eval_batch must be >= 1, eval_images and n_train >= 0")

    @property
    def loss_kind(self) -> str:
        if self.recon_loss != "auto":
            return self.recon_loss
        return "bce" if self.channels == 1 else "mse"


# ---------------------------------------------------------------------------------------------------
# Latent-to-image GANs: gan-mlp, dcgan, cgan
# ---------------------------------------------------------------------------------------------------
@dataclass
class ImageGANConfig(TrainConfig):
    alternating_steps = True     # D and G step in turn (no grad_accum)
    dataset: str = "faces"       # embedded default: faces | digits | mnist | fashion-mnist; ignored with --data
    image_size: int = 32         # side of the square images (px)
    channels: int = 3            # 1 (grey) or 3 (RGB)
    n_train: int = 6000          # faces: images rendered (train + held-out); folders: max images (0 = all)
    val_fraction: float = 0.1    # held-out share (FID/KID reference)
    latent_dim: int = 100        # size of the generator's input noise z
    epochs: int = 0              # > 0: max_steps = epochs x ceil(train images / batch_size)
    beta1: float = 0.5           # Adam betas (DCGAN: 0.5, 0.999)
    beta2: float = 0.999         # Adam's second beta
    d_lr: float = 0.0            # discriminator/critic lr; 0 = same as lr
    ema_decay: float = 0.999     # > 0: sample from an exponential moving average of the generator (0 = off)
    eval_samples: int = 500      # generated images for FID/KID/precision/recall
    batch_size: int = 64
    lr: float = 2e-4
    save_every: int = 500
    eval_every: int = 0
    log_every: int = 25
    bounds = {"hidden": "[1, inf)", "g_width": "[1, inf)", "d_width": "[1, inf)", "n_critic": "[1, inf)"}

    def check(self) -> None:
        if self.image_size < 4 or self.channels not in (1, 3):
            raise ConfigError("invalid config: need image_size >= 4 and channels 1 or 3")
        if self.latent_dim < 1 or self.eval_samples < 10:
            raise ConfigError("invalid config: need latent_dim >= 1 and eval_samples >= 10")
        if self.epochs < 0:
            raise ConfigError("invalid config: epochs must be >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError("invalid config: ema_decay must be in [0, 1) (0 = no EMA generator)")


@dataclass
class ConvGANConfig(ImageGANConfig):
    """The DCGAN-shaped networks of dcgan and cgan."""

    g_width: int = 32            # channels of the generator's last hidden layer (ngf; doubled per stage inward)
    d_width: int = 32            # channels of the discriminator / critic's first layer (ndf; doubled per stage)

    def check(self) -> None:
        super().check()
        try:
            n_doublings(self.image_size)
        except ValueError as e:
            raise ConfigError(f"invalid config: {e}") from None


def check_sample(opts: SampleOptions) -> None:
    if opts.n < 1:
        raise ConfigError(f"sample n must be >= 1, got {opts.n}")
    if getattr(opts, "steps", 2) < 2:
        raise ConfigError("sample steps must be >= 2")


@dataclass
class ImageSample(SampleOptions):
    n: int = 64
    mode: str = "grid"           # grid | interpolate (latent interpolation strips)
    steps: int = 8               # images per interpolation strip

    def check(self) -> None:
        check_sample(self)
        if self.mode not in ("grid", "interpolate"):
            raise ConfigError(f"unknown sample mode {self.mode!r} (grid or interpolate)")


class ImageGANRecipe(ImageRecipe):
    """A generator from latents (plus labels for cgan) and a discriminator or critic."""

    ema_of = {"generator_ema": "generator"}
    MAX_STRIPS: ClassVar[int] = 8    # interpolation pictures: at most this many rows

    # -- data ---------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.load_images(self.data_config())
        self.train_x, self.train_y = self.data.train, self.data.train_labels

    def data_config(self) -> ImageGANConfig:
        return self.config

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        c = self.config
        idx = self.batch_indices(index, len(self.train_x))
        z = torch.randn(2, c.batch_size, c.latent_dim, generator=self.step_rng(index))
        out = {"real": self.train_x[idx].float(), "z_d": self.shard(z[0]), "z_g": self.shard(z[1])}
        return {k: v.to(self.device) for k, v in out.items()}

    # -- model ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    def build_networks(self) -> dict[str, nn.Module]:
        """The trained networks: "generator" and "discriminator" or "critic"."""

    def build_modules(self) -> dict[str, nn.Module]:
        return self.with_ema(self.build_networks(), enabled=self.config.ema_decay > 0)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.beta1, c.beta2)
        d_name = "critic" if "critic" in self.modules else "discriminator"
        return {d_name: torch.optim.Adam(self.modules[d_name].parameters(), lr=c.d_lr or c.lr, betas=betas),
                "generator": torch.optim.Adam(self.modules["generator"].parameters(), lr=c.lr, betas=betas)}

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One discriminator then one generator update with the non-saturating loss; real and
        the detached fakes go through D in one forward (one forward per backward under DDP)."""
        G, D = self.train_modules["generator"], self.train_modules["discriminator"]
        real = batch["real"]
        n = real.shape[0]
        with torch.no_grad():
            fake = G(batch["z_d"])
        with self.autocast():
            d_logits = D(torch.cat([real, fake.to(real.dtype)])).float()
        d_loss = bce_discriminator_loss(d_logits, n)
        self.optimize("discriminator", d_loss)
        # The generator step shows D the same real+fake mix as the D step: with batch norm in D, a
        # fake-only batch would be normalised differently from what D was trained on.
        with self.autocast():
            g_logits = D(torch.cat([real, G(batch["z_g"]).to(real.dtype)])).float()[n:]
        g_loss = bce_generator_loss(g_logits)
        self.optimize("generator", g_loss)
        self.update_ema(step)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "d_real": torch.sigmoid(d_logits[:n]).mean().item(),
                "d_fake": torch.sigmoid(d_logits[n:]).mean().item()}

    # -- sampling ------------------------------------------------------------------------------------
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

    def interpolation_rows(self, n: int, seed: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two latents per row (rows = min(n, MAX_STRIPS)) and the slerp between them: (ends, path)
        with ends (2, rows, d) and path (rows, steps, d)."""
        rows = max(1, min(n, self.MAX_STRIPS))
        ends = self.latents(2 * rows, seed).view(2, rows, -1)
        return ends, slerp(ends[0], ends[1], torch.linspace(0, 1, steps))

    def generate(self, opts: ImageSample) -> Images:
        opts.check()
        if opts.mode == "grid":
            return self.picture(self.generator_images(self.latents(opts.n, opts.seed)),
                                title=f"{self.name}: {opts.n} samples (seed {opts.seed})")
        _, z = self.interpolation_rows(opts.n, opts.seed, opts.steps)
        return self.picture(self.generator_images(z.reshape(-1, self.config.latent_dim)), ncol=opts.steps,
                            name="interpolation", col_labels=steps_labels(opts.steps),
                            title="each row: a spherical walk between two latents")

    # -- evaluation -----------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        self.load_data_once()
        return self.quality(self.data.val, self.generator_images(self.latents(self.config.eval_samples, EVAL_SEED)),
                            other_real=self.data.train)
