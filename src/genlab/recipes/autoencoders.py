"""Recipe `autoencoder`: the reference text's dense digit AE (784-200-20) and Hands-On ML's variants
(`variant` = dense | stacked | tied | conv | denoising | sparse).

Samples are reconstruction grids (a row of held-out inputs above a row of reconstructions) or
images decoded from random codes. Evaluation (held-out): reconstruction MSE per pixel and per
image on the [0, 1] pixel scale. Data, chunking and pictures come from recipes/image_base.py;
the convolutional VAE is recipes/vae.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.autoencoder import VARIANTS, AEConfig, Autoencoder, raw_to_image, sparsity_kl
from ..outputs import Images
from .base import SampleOptions
from .image_base import ImageAEConfig, ImageRecipe, check_sample, in_chunks, stacked_rows

# Per-variant defaults when `hidden` / `latent_dim` are left empty / 0.
_VARIANT_HIDDEN = {"dense": [200], "stacked": [300, 150], "tied": [300, 150], "conv": [],
                   "denoising": [300, 150], "sparse": [100]}
_VARIANT_LATENT = {"dense": 20, "stacked": 30, "tied": 30, "conv": 32, "denoising": 30, "sparse": 300}
COV_JITTER = 1e-5       # added to the held-out codes' covariance so its Cholesky factor exists


@dataclass
class AutoencoderConfig(ImageAEConfig):
    variant: str = "dense"          # dense | stacked | tied | conv | denoising | sparse
    hidden: list[int] = field(default_factory=list)   # hidden sizes (empty = the variant's default)
    latent_dim: int = 0             # code size (0 = the variant's default)
    conv_width: int = 32            # conv variant: channels of the first conv (doubled once)
    bounds = {"conv_width": "[1, inf)"}
    noise: str = "gaussian"         # denoising: gaussian | dropout
    noise_amount: float = 0.3       # denoising: std in [-1, 1] units, or dropout rate
    sparsity: str = "kl"            # sparse: l1 (on codes) | kl (to target activation rho)
    sparsity_weight: float = 0.05   # sparse: weight of the sparsity penalty
    sparsity_target: float = 0.1    # rho
    max_steps: int = 3000
    batch_size: int = 128

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
        check_sample(self)
        if self.mode not in ("reconstruct", "random"):
            raise ConfigError("invalid sample option: mode must be reconstruct or random")


class AutoencoderRecipe(ImageRecipe):
    name = "autoencoder"
    Config = AutoencoderConfig
    network = Autoencoder
    Sample = AutoencoderSample
    presets = {
        # The reference text's dense digit autoencoder at full size: MNIST, 784-200-20, ~50 epochs.
        "book": {"variant": "dense", "hidden": [200], "latent_dim": 20, "dataset": "mnist",
                 "batch_size": 64, "lr": 1e-3, "max_steps": 40000, "eval_every": 2000, "save_every": 2000},
    }

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
        out = in_chunks(lambda b: raw_to_image(model(b.to(self.device))[0].float(), kind).cpu(), x,
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
        out = {"val_loss": sum(losses) / len(x), **self.reconstruction_metrics(x, torch.cat(raws))}
        if self.config.variant == "sparse":
            out["mean_code"] = float(torch.cat(codes).mean())
        return out

    def generate(self, opts: AutoencoderSample) -> Images:
        """reconstruct: n held-out inputs, each row of them above its reconstructions;
        random: n images decoded from codes ~ N(mean, cov) of the held-out codes."""
        opts.check()
        x = self.val_images()
        g = torch.Generator().manual_seed(opts.seed)
        model = self.modules["model"]
        if opts.mode == "reconstruct":
            pick = torch.randperm(len(x), generator=g)[:opts.n] if opts.n <= len(x) else \
                torch.randint(0, len(x), (opts.n,), generator=g)
            inputs = x[pick]
            grid, ncol, rows = stacked_rows([inputs, self.reconstruct(inputs)], ["input", "reconstruction"])
            return self.picture(grid, ncol=ncol, row_labels=rows, name="reconstructions",
                                title=f"{self.config.variant} autoencoder: held-out inputs and reconstructions")
        codes = torch.cat(in_chunks(lambda b: model.encode(b.to(self.device)).float().cpu(), x, self.config.eval_batch))
        mean, cov = codes.mean(0), torch.cov(codes.T) + COV_JITTER * torch.eye(codes.shape[1])
        z = mean + torch.randn(opts.n, codes.shape[1], generator=g) @ torch.linalg.cholesky(cov).T
        if self.config.variant == "sparse":
            z = z.clamp(0, 1)
        images = raw_to_image(model.decode(z.to(self.device)).float(), self.config.loss_kind).cpu()
        return self.picture(images, ncol=min(8, opts.n), name="random_codes",
                            title="decoded from codes drawn from a Gaussian fitted to held-out codes")
