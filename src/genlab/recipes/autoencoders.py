"""Recipes `autoencoder` and `vae`: image autoencoders and the convolutional VAE.

autoencoder  the reference text's dense digit AE (784-200-20) and Hands-On ML's variants
             (`variant` = dense | stacked | tied | conv | denoising | sparse). Samples are
             reconstruction grids: a row of held-out inputs above a row of reconstructions.
vae          a convolutional VAE. Loss per image = reconstruction NLL (summed over pixels)
             + beta * KL(q(z|x) || N(0, I)), KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)).
             `recon_loss`: bce (Bernoulli on intensities in [0, 1]; the default for grey
             digit-like data) or mse (Gaussian with fixed std `sigma` in [-1, 1] units; the
             default for RGB). `reduction`: sum (the loss above, averaged over the batch) or
             mean (the same divided by the number of pixel values: same optimum, smaller
             numbers). Sample modes: prior | reconstruct | interpolate | arithmetic.

Evaluation (held-out): reconstruction MSE per pixel and per image (on the [0, 1] pixel
scale) for both; for vae also the negative ELBO in nats per image (one posterior sample,
likelihood as trained) and FID / KID / precision / recall of prior samples against
held-out images in genlab's own feature space (metrics.feature_net; not comparable with
Inception FID), next to the same numbers for an untrained VAE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.config import TrainConfig
from ..errors import ConfigError
from ..models.autoencoder import (VARIANTS, AEConfig, Autoencoder, ConvVAE, VAEConfig, kl_divergence,
                                  raw_to_image, reconstruction_nll, sparsity_kl, vae_stages)
from .base import Recipe, SampleOptions
from .image_data import DATASETS, ImageData, load_image_dataset

# Per-variant defaults when `hidden` / `latent_dim` are left empty / 0.
_VARIANT_HIDDEN = {"dense": [200], "stacked": [300, 150], "tied": [300, 150], "conv": [],
                   "denoising": [300, 150], "sparse": [100]}
_VARIANT_LATENT = {"dense": 20, "stacked": 30, "tied": 30, "conv": 32, "denoising": 30, "sparse": 300}


@dataclass
class ImageAEConfig(TrainConfig):
    """Keys shared by both recipes (data, evaluation)."""

    dataset: str = "digits"         # faces | digits | mnist | fashion-mnist (ignored with --data)
    image_size: int = 28
    channels: int = 1
    n_train: int = 0                # faces: faces rendered (0 = 6000); folders: max images (0 = all)
    val_fraction: float = 0.2
    recon_loss: str = "auto"        # auto | bce | mse (auto: bce for 1-channel data, mse for RGB)
    eval_batch: int = 500
    eval_images: int = 2000         # held-out images used by evaluate (0 = all)

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


def _batched(fn: Any, x: torch.Tensor, size: int) -> list[Any]:
    """fn over x in chunks of `size` (any N: the last chunk may be partial)."""
    return [fn(x[i:i + size]) for i in range(0, len(x), size)]


def _pairs_grid(top: torch.Tensor, bottom: torch.Tensor, per_row: int = 16) -> tuple[torch.Tensor, int]:
    """Interleave chunks so a grid shows a row of `top` above the matching row of `bottom`."""
    rows = []
    for i in range(0, len(top), per_row):
        a, b = top[i:i + per_row], bottom[i:i + per_row]
        if len(a) < per_row and len(top) > per_row:  # pad a short last chunk to keep columns aligned
            pad = torch.full((per_row - len(a), *a.shape[1:]), -1.0)
            a, b = torch.cat([a, pad]), torch.cat([b, pad])
        rows += [a, b]
    return torch.cat(rows), min(per_row, len(top))


class _ImageRecipe(Recipe):
    """Shared plumbing: data, held-out reconstruction metrics, PNG grids."""

    data: ImageData

    def prepare_data(self) -> None:
        self.data = load_image_dataset(self.config)
        c = self.config
        if self.data.channels != c.channels or self.data.image_size != c.image_size:
            raise ConfigError(f"data gave {self.data.channels}x{self.data.image_size}px images, config says "
                              f"{c.channels}x{c.image_size}px")

    def val_images(self) -> torch.Tensor:
        self.load_data_once()
        n = self.config.eval_images
        return self.data.val[:n] if n else self.data.val

    def _reconstruction_metrics(self, x: torch.Tensor, recon: torch.Tensor) -> dict[str, float]:
        err = ((recon.float() - x.float()) / 2) ** 2  # [0, 1] pixel scale
        return {"mse_per_pixel": float(err.mean()), "mse_per_image": float(err.flatten(1).sum(1).mean())}

    def _write_grid(self, images: torch.Tensor, path: Path, nrow: int) -> Path:
        from ..data.images import save_image_grid

        path.parent.mkdir(parents=True, exist_ok=True)
        return save_image_grid(images.float().cpu().clamp(-1, 1), path, nrow=nrow)


# --------------------------------------------------------------------------------------------
# autoencoder
# --------------------------------------------------------------------------------------------
@dataclass
class AutoencoderConfig(ImageAEConfig):
    variant: str = "dense"          # dense | stacked | tied | conv | denoising | sparse
    hidden: list[int] = field(default_factory=list)   # hidden sizes (empty = the variant's default)
    latent_dim: int = 0             # code size (0 = the variant's default)
    conv_width: int = 32
    noise: str = "gaussian"         # denoising: gaussian | dropout
    noise_amount: float = 0.3       # denoising: std in [-1, 1] units, or dropout rate
    sparsity: str = "kl"            # sparse: l1 (on codes) | kl (to target activation rho)
    sparsity_weight: float = 0.05
    sparsity_target: float = 0.1    # rho
    max_steps: int = 3000
    batch_size: int = 128
    lr: float = 1e-3
    eval_every: int = 500
    save_every: int = 1000

    def check(self) -> None:
        self.check_common()
        if self.variant not in VARIANTS:
            raise ConfigError(f"invalid config: variant must be one of {', '.join(VARIANTS)}")
        if self.variant == "conv" and self.image_size % 4:
            raise ConfigError("invalid config: the conv variant needs image_size divisible by 4")
        if self.noise not in ("gaussian", "dropout"):
            raise ConfigError("invalid config: noise must be gaussian or dropout")
        if self.noise == "dropout" and not 0 <= self.noise_amount < 1:
            raise ConfigError("invalid config: dropout noise_amount must be in [0, 1)")
        if self.sparsity not in ("l1", "kl"):
            raise ConfigError("invalid config: sparsity must be l1 or kl")
        if not 0 < self.sparsity_target < 1:
            raise ConfigError("invalid config: sparsity_target must be in (0, 1)")
        if self.latent_dim < 0 or any(h < 1 for h in self.hidden):
            raise ConfigError("invalid config: latent_dim and hidden sizes must be positive")

    def model_config(self) -> AEConfig:
        return AEConfig(variant=self.variant, channels=self.channels, image_size=self.image_size,
                        hidden=list(self.hidden) or _VARIANT_HIDDEN[self.variant],
                        latent_dim=self.latent_dim or _VARIANT_LATENT[self.variant],
                        conv_width=self.conv_width, noise=self.noise, noise_amount=self.noise_amount)


@dataclass
class AutoencoderSample(SampleOptions):
    n: int = 16
    mode: str = "reconstruct"       # reconstruct (held-out inputs and outputs) | random (decode codes
    #                                 drawn from a Gaussian fitted to held-out codes)

    def check(self) -> None:
        if self.mode not in ("reconstruct", "random"):
            raise ConfigError("invalid sample option: mode must be reconstruct or random")
        if self.n < 1:
            raise ConfigError("invalid sample option: n must be >= 1")


class AutoencoderRecipe(_ImageRecipe):
    name = "autoencoder"
    summary = "image autoencoders (dense 784-200-20, stacked, tied, conv, denoising, sparse); reconstruction error"
    default_data = "sklearn's 8x8 digits upscaled to 28x28 (dataset=mnist|fashion-mnist|faces, or an image folder)"
    Config = AutoencoderConfig
    Sample = AutoencoderSample
    presets = {
        # The reference text's dense digit autoencoder at full size: MNIST, 784-200-20, ~50 epochs.
        "book": {"variant": "dense", "hidden": [200], "latent_dim": 20, "dataset": "mnist",
                 "batch_size": 64, "lr": 1e-3, "max_steps": 40000, "eval_every": 2000, "save_every": 2000},
    }

    def build_modules(self) -> dict[str, nn.Module]:
        torch.manual_seed(self.config.seed)
        return {"model": Autoencoder(self.config.model_config())}

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        c = self.config
        idx = self.batch_indices(index, len(self.data.train))
        out = {"x": self.data.train[idx]}
        if c.variant == "denoising":
            shape = (c.batch_size, c.channels, c.image_size, c.image_size)
            g = self.step_rng(index)
            noise = torch.randn(shape, generator=g) if c.noise == "gaussian" else torch.rand(shape, generator=g)
            out["noise"] = self.shard(noise)
        return {k: v.to(self.device) for k, v in out.items()}

    def _recon_loss(self, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raw, x = raw.float(), x.float()
        if self.config.loss_kind == "bce":
            return F.binary_cross_entropy_with_logits(raw, (x + 1) / 2)
        return F.mse_loss(torch.tanh(raw), x)

    def _sparsity(self, codes: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.sparsity == "l1":
            return c.sparsity_weight * codes.float().abs().sum(1).mean()
        return c.sparsity_weight * sparsity_kl(codes, c.sparsity_target)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        x = batch["x"]
        with self.autocast():
            raw, codes = self.train_modules["model"](x, batch.get("noise"))
        recon = self._recon_loss(raw, x)
        loss = recon
        logs = {"recon": recon.item()}
        if self.config.variant == "sparse":
            penalty = self._sparsity(codes)
            loss = loss + penalty
            logs |= {"sparsity": penalty.item(), "mean_code": float(codes.float().mean())}
        self.optimize("model", loss)
        return {"loss": loss.item(), **logs}

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> reconstructions in [-1, 1] (any N, batched)."""
        model = self.modules["model"]
        kind = self.config.loss_kind
        out = _batched(lambda b: raw_to_image(model(b.to(self.device))[0].float(), kind).cpu(), x,
                       self.config.eval_batch)
        return torch.cat(out) if out else x.clone()

    def evaluate(self) -> dict[str, float]:
        x = self.val_images()
        model = self.modules["model"]
        raws, losses, codes = [], [], []
        for i in range(0, len(x), self.config.eval_batch):
            b = x[i:i + self.config.eval_batch].to(self.device)
            raw, code = model(b)
            losses.append(float(self._recon_loss(raw, b)) * len(b))
            raws.append(raw_to_image(raw.float(), self.config.loss_kind).cpu())
            codes.append(code.float().cpu())
        out = {"val_loss": sum(losses) / len(x), **self._reconstruction_metrics(x, torch.cat(raws))}
        if self.config.variant == "sparse":
            out["mean_code"] = float(torch.cat(codes).mean())
        return out

    def generate(self, opts: AutoencoderSample) -> torch.Tensor:
        """reconstruct: (2n, C, H, W) = n held-out inputs then their reconstructions;
        random: (n, C, H, W) decoded from codes ~ N(mean, cov) of the held-out codes."""
        x = self.val_images()
        g = torch.Generator().manual_seed(opts.seed)
        model = self.modules["model"]
        if opts.mode == "reconstruct":
            pick = torch.randperm(len(x), generator=g)[:opts.n] if opts.n <= len(x) else \
                torch.randint(0, len(x), (opts.n,), generator=g)
            inputs = x[pick]
            return torch.cat([inputs, self.reconstruct(inputs)])
        codes = torch.cat(_batched(lambda b: model.encode(b.to(self.device)).float().cpu(), x, self.config.eval_batch))
        mean, cov = codes.mean(0), torch.cov(codes.T) + 1e-5 * torch.eye(codes.shape[1])
        z = mean + torch.randn(opts.n, codes.shape[1], generator=g) @ torch.linalg.cholesky(cov).T
        if self.config.variant == "sparse":
            z = z.clamp(0, 1)
        return raw_to_image(model.decode(z.to(self.device)).float(), self.config.loss_kind).cpu()

    def write_samples(self, out_dir: Path, opts: AutoencoderSample) -> list[Path]:
        images = self.generate(opts)
        if opts.mode == "reconstruct":
            grid, nrow = _pairs_grid(images[:opts.n], images[opts.n:])
            return [self._write_grid(grid, out_dir / "reconstructions.png", nrow)]
        return [self._write_grid(images, out_dir / "random_codes.png", min(8, opts.n))]


# --------------------------------------------------------------------------------------------
# vae
# --------------------------------------------------------------------------------------------
@dataclass
class VAERecipeConfig(ImageAEConfig):
    dataset: str = "faces"
    image_size: int = 32
    channels: int = 3
    latent_dim: int = 32
    width: int = 16                 # channels after the first stride-2 conv (doubled per stage)
    beta: float = 1.0               # weight of the KL term (beta-VAE; 1 = the ELBO)
    sigma: float = 0.6              # mse: the Gaussian likelihood's std in [-1, 1] pixel units (0.1: sharper
    #                                 reconstructions, worse prior samples: FID 297 vs 199 on faces)
    reduction: str = "sum"          # sum (nats per image) | mean (divided by C*H*W)
    fid_samples: int = 1000         # prior samples scored by FID/KID/PR at evaluation (0 = skip)
    edit_samples: int = 200         # faces: held-out faces edited per attribute at evaluation (0 = skip)
    feature_steps: int = 0          # feature-net training steps (0 = its default; tests use tiny values)
    max_steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    eval_every: int = 500
    save_every: int = 1000

    def check(self) -> None:
        self.check_common()
        if vae_stages(self.image_size, 4) == 0:
            raise ConfigError("invalid config: vae needs an even image_size >= 8 (e.g. 28, 32, 64)")
        if self.beta < 0 or self.sigma <= 0 or self.latent_dim < 1 or self.width < 1:
            raise ConfigError("invalid config: need beta >= 0, sigma > 0, latent_dim >= 1, width >= 1")
        if self.reduction not in ("sum", "mean"):
            raise ConfigError("invalid config: reduction must be sum or mean")
        if self.fid_samples < 0 or self.feature_steps < 0 or self.edit_samples < 0:
            raise ConfigError("invalid config: fid_samples, edit_samples and feature_steps must be >= 0")

    def model_config(self) -> VAEConfig:
        return VAEConfig(channels=self.channels, image_size=self.image_size, latent_dim=self.latent_dim,
                         width=self.width)


@dataclass
class VAESample(SampleOptions):
    n: int = 16
    mode: str = "prior"             # prior | reconstruct | interpolate | arithmetic
    temperature: float = 1.0        # prior: z ~ N(0, temperature^2 I)
    steps: int = 8                  # interpolate: images per strip
    attribute: str = "glasses"      # arithmetic: a face attribute, or a class name of labelled data
    strength: float = 1.0           # arithmetic: z + strength * (mean z | attr - mean z | not attr)

    def check(self) -> None:
        if self.mode not in ("prior", "reconstruct", "interpolate", "arithmetic"):
            raise ConfigError("invalid sample option: mode must be prior, reconstruct, interpolate or arithmetic")
        if self.n < 1 or self.steps < 2 or self.temperature < 0:
            raise ConfigError("invalid sample option: need n >= 1, steps >= 2, temperature >= 0")


class VAERecipe(_ImageRecipe):
    name = "vae"
    summary = "convolutional VAE (correct KL, beta); prior samples, interpolation, attribute arithmetic; ELBO, FID"
    default_data = "procedural 32x32 faces with attributes (dataset=digits|mnist|fashion-mnist, or an image folder)"
    Config = VAERecipeConfig
    Sample = VAESample
    presets = {
        # The reference text's face VAE at full size (64x64 RGB, 100-d latent), long training.
        "book": {"image_size": 64, "latent_dim": 100, "width": 32, "n_train": 20000, "batch_size": 32,
                 "lr": 1e-4, "max_steps": 30000, "eval_every": 2000, "save_every": 2000},
        # MNIST with a Bernoulli likelihood (the benchmark's setting).
        "mnist": {"dataset": "mnist", "image_size": 28, "channels": 1, "latent_dim": 16, "width": 32,
                  "recon_loss": "bce", "max_steps": 2000, "batch_size": 64},
    }

    def build_modules(self) -> dict[str, nn.Module]:
        torch.manual_seed(self.config.seed)
        return {"model": ConvVAE(self.config.model_config())}

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        c = self.config
        idx = self.batch_indices(index, len(self.data.train))
        eps = self.shard(torch.randn(c.batch_size, c.latent_dim, generator=self.step_rng(index)))
        return {"x": self.data.train[idx].to(self.device), "eps": eps.to(self.device)}

    @property
    def pixels(self) -> int:
        c = self.config
        return c.channels * c.image_size ** 2

    def _terms(self, model: nn.Module, x: torch.Tensor, eps: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(per-image reconstruction NLL, per-image KL, raw output)."""
        with self.autocast():
            raw, mu, logvar = model(x, eps)
        nll = reconstruction_nll(raw, x, self.config.loss_kind, self.config.sigma)
        return nll, kl_divergence(mu, logvar), raw

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        c = self.config
        nll, kl, _ = self._terms(self.train_modules["model"], batch["x"], batch["eps"])
        loss = (nll + c.beta * kl).mean()
        if c.reduction == "mean":
            loss = loss / self.pixels
        self.optimize("model", loss)
        return {"loss": loss.item(), "recon_nll": nll.mean().item(), "kl": kl.mean().item()}

    # -- evaluation ----------------------------------------------------------------------------
    def _elbo_and_recon(self, model: nn.Module, x: torch.Tensor) -> dict[str, float]:
        g = torch.Generator().manual_seed(1234)
        nll_sum = kl_sum = 0.0
        recons = []
        for i in range(0, len(x), self.config.eval_batch):
            b = x[i:i + self.config.eval_batch].to(self.device)
            eps = torch.randn(len(b), self.config.latent_dim, generator=g).to(self.device)
            nll, kl, _ = self._terms(model, b, eps)   # one posterior sample: the ELBO estimate
            nll_sum += float(nll.sum())
            kl_sum += float(kl.sum())
            raw, _, _ = model(b)                      # z = mu for the reconstruction error
            recons.append(raw_to_image(raw.float(), self.config.loss_kind).cpu())
        n = len(x)
        out = {"neg_elbo": (nll_sum + kl_sum) / n, "recon_nll": nll_sum / n, "kl": kl_sum / n}
        return out | self._reconstruction_metrics(x, torch.cat(recons))

    def feature_net(self) -> Any:
        from ..metrics.feature_net import get_feature_net

        c = self.config
        return get_feature_net(self.data.domain, c.image_size, c.channels, steps=c.feature_steps or None)

    def _quality(self, model: nn.Module, real: torch.Tensor, seed: int = 0) -> dict[str, float]:
        from ..metrics.image import quality_report

        g = torch.Generator().manual_seed(seed)
        z = torch.randn(len(real), self.config.latent_dim, generator=g)
        fake = torch.cat(_batched(lambda b: raw_to_image(model.decode(b.to(self.device)).float(),
                                                         self.config.loss_kind).cpu(), z, self.config.eval_batch))
        return quality_report(real, fake, self.feature_net(), other_real=self.data.train[:len(real)])

    def untrained_model(self) -> nn.Module:
        """A freshly initialised VAE (same seed as training): the baseline next to each metric."""
        if getattr(self, "_untrained", None) is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                self._untrained = ConvVAE(self.config.model_config()).to(self.device).eval()
        return self._untrained

    def evaluate(self) -> dict[str, float]:
        x = self.val_images()
        model = self.modules["model"]
        out = self._elbo_and_recon(model, x)
        out["neg_elbo_per_dim"] = out["neg_elbo"] / self.pixels
        n = min(self.config.fid_samples, len(x))
        if self.config.edit_samples and self.data.domain == "faces" and self.data.multi_label:
            out |= self.edit_scores()
        if n >= 10:
            out |= self._quality(model, x[:n])
            base = getattr(self, "_untrained_quality", None)
            if base is None:
                base = self._untrained_quality = self._quality(self.untrained_model(), x[:n])
            out |= {f"{k}_untrained": v for k, v in base.items()}
        return out

    # -- sampling ---------------------------------------------------------------------------------
    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        model = self.modules["model"]
        out = _batched(lambda b: raw_to_image(model.decode(b.to(self.device)).float(), self.config.loss_kind).cpu(),
                       z, self.config.eval_batch)
        return torch.cat(out)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        model = self.modules["model"]
        return torch.cat(_batched(lambda b: model.encode(b.to(self.device))[0].float().cpu(), x, self.config.eval_batch))

    def _attribute_mask(self, attribute: str, labels: torch.Tensor) -> torch.Tensor:
        names = self.data.label_names
        if attribute not in names:
            raise ConfigError(f"unknown attribute '{attribute}' for this data (choose from: {', '.join(names)})")
        i = names.index(attribute)
        return labels[:, i].bool() if self.data.multi_label else labels == i

    def attribute_direction(self, attribute: str, z_train: torch.Tensor | None = None) -> torch.Tensor:
        """mean(z | attribute) - mean(z | not attribute) over (up to 4,000) training images'
        posterior means (`z_train`: those means, when already computed)."""
        self.load_data_once()
        x, labels = self.data.train[:4000], self.data.train_labels[:4000]
        has = self._attribute_mask(attribute, labels)
        if has.all() or not has.any():
            raise ConfigError(f"attribute '{attribute}' needs images with and without it")
        z = self._encode(x) if z_train is None else z_train
        return z[has].mean(0) - z[~has].mean(0)

    def edit_scores(self) -> dict[str, float]:
        """Faces: for each attribute, the share of held-out faces *without* it that the attribute
        classifier (metrics.feature_net) sees with it after z + direction (`edit_<attr>`),
        next to the share for the unedited reconstructions (`edit_<attr>_before`)."""
        from ..metrics.feature_net import get_attribute_classifier

        c = self.config
        clf = get_attribute_classifier(c.image_size, c.channels, steps=c.feature_steps or None)
        z_train = self._encode(self.data.train[:4000])
        x, labels = self.val_images(), self.data.val_labels
        out = {}
        for i, name in enumerate(clf.attributes):
            pool = x[~self._attribute_mask(name, labels[:len(x)])][:c.edit_samples]
            if len(pool) == 0:
                continue
            z = self._encode(pool)
            edited = self._decode(z + self.attribute_direction(name, z_train))
            s = clf.score(edited, name, 1)   # an edit that is not a face counts as a failure
            out[f"edit_{name}"], out[f"edit_{name}_face_rate"] = s["attribute_acc"], s["face_rate"]
            out[f"edit_{name}_before"] = clf.score(self._decode(z), name, 1)["attribute_acc"]
        return out

    def generate(self, opts: VAESample) -> torch.Tensor:
        """prior: (n, C, H, W). reconstruct: 2n (n held-out inputs, then reconstructions).
        interpolate: n strips of `steps` images between two held-out images (row-major).
        arithmetic: 3n (n held-out images without the attribute, their reconstructions, the
        edited versions z + strength * direction)."""
        c = self.config
        g = torch.Generator().manual_seed(opts.seed)
        if opts.mode == "prior":
            return self._decode(torch.randn(opts.n, c.latent_dim, generator=g) * opts.temperature)
        x = self.val_images()
        if opts.mode == "reconstruct":
            inputs = x[torch.randint(0, len(x), (opts.n,), generator=g)]
            return torch.cat([inputs, self._decode(self._encode(inputs))])
        if opts.mode == "interpolate":
            ends = self._encode(x[torch.randint(0, len(x), (2 * opts.n,), generator=g)])
            t = torch.linspace(0, 1, opts.steps)[None, :, None]
            z = ends[0::2, None] * (1 - t) + ends[1::2, None] * t
            return self._decode(z.reshape(-1, c.latent_dim))
        direction = self.attribute_direction(opts.attribute)
        val_labels = self.data.val_labels[:len(x)]
        pool = x[~self._attribute_mask(opts.attribute, val_labels)]
        if len(pool) == 0:
            pool = x
        inputs = pool[torch.randint(0, len(pool), (opts.n,), generator=g)]
        z = self._encode(inputs)
        return torch.cat([inputs, self._decode(z), self._decode(z + opts.strength * direction)])

    def write_samples(self, out_dir: Path, opts: VAESample) -> list[Path]:
        images = self.generate(opts)
        n = opts.n
        if opts.mode == "prior":
            return [self._write_grid(images, out_dir / "prior.png", min(8, max(1, int(math.ceil(math.sqrt(n))))))]
        if opts.mode == "reconstruct":
            grid, nrow = _pairs_grid(images[:n], images[n:])
            return [self._write_grid(grid, out_dir / "reconstructions.png", nrow)]
        if opts.mode == "interpolate":
            return [self._write_grid(images, out_dir / "interpolations.png", opts.steps)]
        per = min(16, n)
        rows = []
        for i in range(0, n, per):
            rows += [images[i:i + per], images[n + i:n + i + per], images[2 * n + i:2 * n + i + per]]
        if n % per:  # keep the three rows of the last chunk aligned
            rows = [torch.cat([r, torch.full((per - len(r), *r.shape[1:]), -1.0)]) for r in rows]
        return [self._write_grid(torch.cat(rows), out_dir / f"arithmetic_{opts.attribute}.png", per)]
