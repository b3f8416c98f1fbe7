"""Recipe `vae`: a convolutional VAE.

Loss per image = reconstruction NLL (summed over pixels) + beta * KL(q(z|x) || N(0, I)),
KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)). `recon_loss`: bce (Bernoulli on
intensities in [0, 1]; the default for grey digit-like data) or mse (Gaussian with fixed std
`sigma` in [-1, 1] units; the default for RGB). `reduction`: sum (the loss above, averaged
over the batch) or mean (the same divided by the number of pixel values: same optimum,
smaller numbers). Sample modes: prior | reconstruct | interpolate | arithmetic.

Evaluation (held-out): reconstruction MSE per pixel and per image (on the [0, 1] pixel
scale), the negative ELBO in nats per image (one posterior sample, likelihood as trained),
FID / KID / precision / recall of prior samples against held-out images in genlab's own
feature space (metrics.feature_net; not comparable with Inception FID), next to the same
numbers for an untrained VAE, and on faces the attribute edits the judge sees.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..models.autoencoder import ConvVAE, VAEConfig, kl_divergence, raw_to_image, reconstruction_nll, vae_stages
from ..outputs import Images
from .base import SampleOptions
from .image_base import ImageAEConfig, ImageRecipe, check_sample, in_chunks, stacked_rows, steps_labels

ELBO_SEED = 1234        # the posterior samples of the held-out ELBO estimate (fixed: comparable runs)
DIRECTION_IMAGES = 4000  # training images whose codes define an attribute direction


@dataclass
class VAERecipeConfig(ImageAEConfig):
    dataset: str = "faces"
    image_size: int = 32
    channels: int = 3
    latent_dim: int = 32            # size of the code z
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
    # evaluations during training (a 30-60 s default run): ELBO and reconstructions of 500 images;
    # FID and attribute edits only in the final evaluation
    periodic_eval = {"eval_images": 500, "fid_samples": 0, "edit_samples": 0}

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
        check_sample(self)
        if self.mode not in ("prior", "reconstruct", "interpolate", "arithmetic"):
            raise ConfigError("invalid sample option: mode must be prior, reconstruct, interpolate or arithmetic")
        if self.temperature < 0:
            raise ConfigError("invalid sample option: temperature must be >= 0")


class VAERecipe(ImageRecipe):
    name = "vae"
    Config = VAERecipeConfig
    network = ConvVAE
    Sample = VAESample
    presets = {
        # The reference text's face VAE at full size (64x64 RGB, 100-d latent), long training.
        "book": {"image_size": 64, "latent_dim": 100, "width": 32, "n_train": 20000, "batch_size": 32,
                 "lr": 1e-4, "max_steps": 30000, "eval_every": 2000, "save_every": 2000},
        # MNIST with a Bernoulli likelihood (the benchmark's setting).
        "mnist": {"dataset": "mnist", "image_size": 28, "channels": 1, "latent_dim": 16, "width": 32,
                  "recon_loss": "bce", "max_steps": 2000, "batch_size": 64},
    }

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
        g = torch.Generator().manual_seed(ELBO_SEED)
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
        return out | self.reconstruction_metrics(x, torch.cat(recons))

    def _quality(self, model: nn.Module, real: torch.Tensor, seed: int = 0) -> dict[str, float]:
        """FID/KID/precision/recall of len(real) prior samples of `model` against `real`."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(len(real), self.config.latent_dim, generator=g)
        fake = torch.cat(in_chunks(lambda b: raw_to_image(model.decode(b.to(self.device)).float(),
                                                          self.config.loss_kind).cpu(), z, self.config.eval_batch))
        return self.quality(real, fake, other_real=self.data.train)

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
        out = in_chunks(lambda b: raw_to_image(model.decode(b.to(self.device)).float(), self.config.loss_kind).cpu(),
                       z, self.config.eval_batch)
        return torch.cat(out)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        model = self.modules["model"]
        mus = in_chunks(lambda b: model.encode(b.to(self.device))[0].float().cpu(), x, self.config.eval_batch)
        return torch.cat(mus)

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
        x, labels = self.data.train[:DIRECTION_IMAGES], self.data.train_labels[:DIRECTION_IMAGES]
        has = self._attribute_mask(attribute, labels)
        if has.all() or not has.any():
            raise ConfigError(f"attribute '{attribute}' needs images with and without it")
        z = self._encode(x) if z_train is None else z_train
        return z[has].mean(0) - z[~has].mean(0)

    def edit_scores(self) -> dict[str, float]:
        """Faces: for each attribute, the share of held-out faces *without* it that the attribute
        classifier (metrics.feature_net) sees with it after z + direction (`edit_<attr>`),
        next to the share for the unedited reconstructions (`edit_<attr>_before`)."""
        c = self.config
        clf = self.attribute_classifier()
        z_train = self._encode(self.data.train[:DIRECTION_IMAGES])
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

    def generate(self, opts: VAESample) -> Images:
        """prior: n samples; reconstruct: rows of held-out inputs above their reconstructions;
        interpolate: n strips of `steps` images between two held-out images; arithmetic: rows of
        held-out images without the attribute, their reconstructions and the edited versions
        z + strength * direction."""
        opts.check()
        c = self.config
        g = torch.Generator().manual_seed(opts.seed)
        if opts.mode == "prior":
            images = self._decode(torch.randn(opts.n, c.latent_dim, generator=g) * opts.temperature)
            return self.picture(images, ncol=min(8, max(1, int(math.ceil(math.sqrt(opts.n))))), name="prior",
                                title=f"prior samples, temperature {opts.temperature:g}")
        x = self.val_images()
        if opts.mode == "reconstruct":
            inputs = x[torch.randint(0, len(x), (opts.n,), generator=g)]
            grid, ncol, rows = stacked_rows([inputs, self._decode(self._encode(inputs))], ["input", "reconstruction"])
            return self.picture(grid, ncol=ncol, row_labels=rows, name="reconstructions")
        if opts.mode == "interpolate":
            ends = self._encode(x[torch.randint(0, len(x), (2 * opts.n,), generator=g)])
            t = torch.linspace(0, 1, opts.steps)[None, :, None]
            z = ends[0::2, None] * (1 - t) + ends[1::2, None] * t
            return self.picture(self._decode(z.reshape(-1, c.latent_dim)), ncol=opts.steps, name="interpolations",
                                col_labels=steps_labels(opts.steps),
                                title="each row: a straight line between two held-out images' codes")
        direction = self.attribute_direction(opts.attribute)
        val_labels = self.data.val_labels[:len(x)]
        pool = x[~self._attribute_mask(opts.attribute, val_labels)]
        if len(pool) == 0:
            pool = x
        inputs = pool[torch.randint(0, len(pool), (opts.n,), generator=g)]
        z = self._encode(inputs)
        groups = [inputs, self._decode(z), self._decode(z + opts.strength * direction)]
        grid, ncol, rows = stacked_rows(groups, ["input", "reconstruction", f"+ {opts.attribute}"])
        return self.picture(grid, ncol=ncol, row_labels=rows, name=f"arithmetic_{opts.attribute}",
                            title=f"z + {opts.strength:g} x ({opts.attribute} direction)")
