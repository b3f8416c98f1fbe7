"""Autoencoders and the variational autoencoder, as pure nn.Modules.

Images are float (N, C, H, W) in [-1, 1]. Decoders return *raw* outputs; what they mean
depends on the reconstruction likelihood chosen by the recipe:

    "bce" (Bernoulli)  raw = logits of pixel intensities in [0, 1]; image = 2*sigmoid(raw) - 1
    "mse" (Gaussian)   raw -> mean = tanh(raw) in [-1, 1];          image = tanh(raw)

Variants of `Autoencoder` (the reference text's dense digit AE and Hands-On ML's family):

    dense      MLP encoder / decoder, e.g. the book's 784-200-20-200-784
    stacked    a deeper MLP (784-300-150-30 by default), SELU-free, plain ReLU
    tied       the decoder reuses the encoder's weight matrices, transposed (own biases)
    conv       stride-2 convolutions down, transposed convolutions up
    denoising  a dense AE whose input is corrupted (Gaussian noise or dropout) in train mode only
    sparse     a dense AE with sigmoid codes; the recipe adds an L1 or KL(rho) sparsity penalty

Fixes over the books: weight init is actually applied (`init_weights` runs in __init__),
the KL term is -0.5 * sum(1 + logvar - mu^2 - exp(logvar)), and nothing assumes a full
last batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ("dense", "stacked", "tied", "conv", "denoising", "sparse")


def init_weights(m: nn.Module) -> None:
    """He init for layers followed by ReLU, zero biases (applied with module.apply)."""
    if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def raw_to_image(raw: torch.Tensor, recon_loss: str) -> torch.Tensor:
    """Decoder output -> image in [-1, 1] (see the module docstring)."""
    return torch.sigmoid(raw) * 2 - 1 if recon_loss == "bce" else torch.tanh(raw)


def reconstruction_nll(raw: torch.Tensor, x: torch.Tensor, recon_loss: str, sigma: float = 1.0) -> torch.Tensor:
    """Per-image negative log-likelihood in nats, summed over pixels: shape (N,).

    bce: Bernoulli with p = sigmoid(raw) on intensities (x + 1) / 2 in [0, 1] (the usual
         cross-entropy; a normalized likelihood only for binary pixels).
    mse: Gaussian N(x; tanh(raw), sigma^2) per pixel in [-1, 1] units, constants included.
    """
    raw, x = raw.float().flatten(1), x.float().flatten(1)
    if recon_loss == "bce":
        return F.binary_cross_entropy_with_logits(raw, (x + 1) / 2, reduction="none").sum(1)
    if recon_loss == "mse":
        sq = (x - torch.tanh(raw)) ** 2
        return (0.5 * sq / sigma ** 2).sum(1) + x.shape[1] * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    raise ValueError(f"unknown reconstruction loss {recon_loss!r} (bce or mse)")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dims: shape (N,).

    = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)). (The book prints it with the wrong
    sign / terms; this is Kingma & Welling 2014, appendix B.)
    """
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


def sparsity_kl(codes: torch.Tensor, rho: float) -> torch.Tensor:
    """sum_j KL(Bernoulli(rho) || Bernoulli(rho_hat_j)), rho_hat_j = mean activation of unit j."""
    rho_hat = codes.float().mean(0).clamp(1e-6, 1 - 1e-6)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


@dataclass
class AEConfig:
    variant: str = "dense"
    channels: int = 1
    image_size: int = 28
    hidden: list[int] = field(default_factory=lambda: [200])
    latent_dim: int = 20
    conv_width: int = 32              # conv: channels of the first stride-2 layer (doubled after)
    noise: str = "gaussian"           # denoising: gaussian | dropout
    noise_amount: float = 0.3         # denoising: noise std (in [-1, 1] units) or dropout rate


class Corrupt(nn.Module):
    """Input corruption of the denoising AE; the identity in eval mode.

    `noise` may be given (standard normal for "gaussian", uniform [0, 1) for "dropout") so
    that a recipe can draw it from its per-step generator; otherwise it is drawn here.
    """

    def __init__(self, kind: str, amount: float):
        super().__init__()
        self.kind, self.amount = kind, amount

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training or self.amount <= 0:
            return x
        if self.kind == "gaussian":
            noise = torch.randn_like(x) if noise is None else noise.to(x.device, x.dtype)
            return x + self.amount * noise
        u = torch.rand_like(x) if noise is None else noise.to(x.device, x.dtype)
        return x * (u >= self.amount).to(x.dtype) / (1 - self.amount)  # inverted dropout, as nn.Dropout


class TiedDecoder(nn.Module):
    """Dense decoder whose weights ARE the encoder's (transposed): only biases are its own."""

    def __init__(self, encoder_layers: list[nn.Linear]):
        super().__init__()
        self.encoder_layers = encoder_layers  # a plain list: not registered twice as submodules
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(layer.in_features))
                                        for layer in reversed(encoder_layers)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        layers = list(reversed(self.encoder_layers))
        for i, (layer, b) in enumerate(zip(layers, self.biases)):
            h = F.linear(h, layer.weight.t(), b)
            if i < len(layers) - 1:
                h = F.relu(h)
        return h


class Autoencoder(nn.Module):
    """encode(x) -> codes, decode(codes) -> raw pixels; forward(x) -> (raw, codes)."""

    def __init__(self, cfg: AEConfig):
        super().__init__()
        if cfg.variant not in VARIANTS:
            raise ValueError(f"unknown autoencoder variant {cfg.variant!r} ({', '.join(VARIANTS)})")
        self.cfg = cfg
        c, s = cfg.channels, cfg.image_size
        d_in = c * s * s
        self.corrupt = Corrupt(cfg.noise, cfg.noise_amount if cfg.variant == "denoising" else 0.0)
        if cfg.variant == "conv":
            w = cfg.conv_width
            self.encoder = nn.Sequential(
                nn.Conv2d(c, w, 3, 2, 1), nn.ReLU(),
                nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(),
                nn.Flatten(), nn.Linear(2 * w * (s // 4) ** 2, cfg.latent_dim))
            self.decoder = nn.Sequential(
                nn.Linear(cfg.latent_dim, 2 * w * (s // 4) ** 2), nn.ReLU(),
                nn.Unflatten(1, (2 * w, s // 4, s // 4)),
                nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),
                nn.ConvTranspose2d(w, c, 4, 2, 1))
        else:
            sizes = [d_in, *cfg.hidden, cfg.latent_dim]
            enc: list[nn.Module] = [nn.Flatten()]
            linears = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
            for i, layer in enumerate(linears):
                enc.append(layer)
                if i < len(linears) - 1:
                    enc.append(nn.ReLU())
            if cfg.variant == "sparse":
                enc.append(nn.Sigmoid())  # activations in (0, 1): a target activation rho makes sense
            self.encoder = nn.Sequential(*enc)
            if cfg.variant == "tied":
                self.decoder = nn.Sequential(TiedDecoder(linears), nn.Unflatten(1, (c, s, s)))
            else:
                rev = sizes[::-1]
                dec: list[nn.Module] = []
                for i, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
                    dec.append(nn.Linear(a, b))
                    if i < len(rev) - 2:
                        dec.append(nn.ReLU())
                self.decoder = nn.Sequential(*dec, nn.Unflatten(1, (c, s, s)))
        self.apply(init_weights)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(codes)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        codes = self.encode(self.corrupt(x, noise))
        return self.decode(codes), codes


@dataclass
class VAEConfig:
    channels: int = 3
    image_size: int = 64
    latent_dim: int = 64
    width: int = 32                  # channels after the first stride-2 conv (doubled per stage)
    max_stages: int = 4              # stride-2 stages, while the side stays even and >= 8


def vae_stages(image_size: int, max_stages: int) -> int:
    """How many times the side can be halved exactly (64 -> 4: 4 stages; 28 -> 7: 2)."""
    n, s = 0, image_size
    while n < max_stages and s % 2 == 0 and s >= 8:
        s //= 2
        n += 1
    return n


class ConvVAE(nn.Module):
    """Convolutional VAE: conv-BN-LeakyReLU stages down to (C, s, s), linear heads for mu and
    logvar; the decoder mirrors it with transposed convolutions."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        n = vae_stages(cfg.image_size, cfg.max_stages)
        if n == 0:
            raise ValueError(f"image_size {cfg.image_size} cannot be halved; use an even size >= 8")
        widths = [cfg.width * 2 ** i for i in range(n)]
        self.bottom = cfg.image_size // 2 ** n
        down: list[nn.Module] = []
        c_in = cfg.channels
        for w in widths:
            down += [nn.Conv2d(c_in, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(0.2)]
            c_in = w
        self.encoder = nn.Sequential(*down, nn.Flatten())
        flat = widths[-1] * self.bottom ** 2
        self.to_mu = nn.Linear(flat, cfg.latent_dim)
        self.to_logvar = nn.Linear(flat, cfg.latent_dim)
        up: list[nn.Module] = [nn.Linear(cfg.latent_dim, flat), nn.Unflatten(1, (widths[-1], self.bottom, self.bottom))]
        rev = widths[::-1]
        for a, b in zip(rev[:-1], rev[1:]):
            up += [nn.BatchNorm2d(a), nn.ReLU(), nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False)]
        up += [nn.BatchNorm2d(rev[-1]), nn.ReLU(), nn.ConvTranspose2d(rev[-1], cfg.channels, 4, 2, 1)]
        self.decoder = nn.Sequential(*up)
        self.apply(init_weights)
        # start near the prior: small mu, logvar ~ 0, so early KL terms are tame
        for head in (self.to_mu, self.to_logvar):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h).clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(raw reconstruction, mu, logvar); z = mu + exp(logvar / 2) * eps (eps = 0: the mean)."""
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.zeros_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps.to(mu.dtype)
        return self.decode(z), mu, logvar
