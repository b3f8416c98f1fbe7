"""Image GAN networks: dense G/D, DCGAN G/D, and the conditional DCGAN generator/critic.

All generators map a latent vector (plus, when conditional, a label vector) to images in
[-1, 1] (tanh); discriminators return one logit (or critic score) per image. `slerp` walks
between latents for interpolation pictures.
Fix over the reference books: the N(0, 0.02) initialisation of DCGAN is actually applied
(`dcgan_init` runs inside every constructor here), not merely defined.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def dcgan_init(m: nn.Module) -> None:
    """DCGAN paper init: conv/linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)):
        if getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------
# Fully connected GAN (28x28 greyscale in the book)
# ---------------------------------------------------------------------------------------------
@dataclass
class DenseGANConfig:
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 100
    hidden: tuple[int, ...] = (256, 512, 1024)   # generator widths; the discriminator mirrors them
    dropout: float = 0.3                          # discriminator only, never after its output


class DenseGenerator(nn.Module):
    def __init__(self, cfg: DenseGANConfig):
        super().__init__()
        self.shape = (cfg.channels, cfg.image_size, cfg.image_size)
        layers: list[nn.Module] = []
        d = cfg.latent_dim
        for h in cfg.hidden:
            layers += [nn.Linear(d, h), nn.ReLU(inplace=True)]
            d = h
        layers += [nn.Linear(d, math.prod(self.shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class DenseDiscriminator(nn.Module):
    def __init__(self, cfg: DenseGANConfig):
        super().__init__()
        layers: list[nn.Module] = []
        d = cfg.channels * cfg.image_size ** 2
        for h in reversed(cfg.hidden):
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2, inplace=True)]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            d = h
        layers.append(nn.Linear(d, 1))  # a logit: the loss applies the sigmoid (stable BCE)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


# ---------------------------------------------------------------------------------------------
# DCGAN (Radford et al. 2015): transposed convolutions + batch norm
# ---------------------------------------------------------------------------------------------
@dataclass
class DCGANConfig:
    image_size: int = 64          # a power of two >= 8
    channels: int = 3
    latent_dim: int = 100
    n_classes: int = 0            # > 0: conditional; the one-hot (or soft) label joins the input
    g_width: int = 64             # channels of the generator's last hidden layer (ngf)
    d_width: int = 64             # channels of the discriminator's first layer (ndf)
    d_norm: str = "batch"         # batch | layer | none (a WGAN-GP critic must not use batch norm)


def n_doublings(image_size: int) -> int:
    """Number of stride-2 stages between 4x4 and image_size."""
    k = int(round(math.log2(image_size))) if image_size > 0 else 0
    if image_size < 8 or 2 ** k != image_size:
        raise ValueError(f"DCGAN image_size must be a power of two >= 8, got {image_size}")
    return k - 2


class DCGANGenerator(nn.Module):
    """z (and label) -> 4x4 by a transposed conv, then doubling stages with BN + ReLU, tanh output."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        n = n_doublings(cfg.image_size)
        self.latent_dim, self.n_classes = cfg.latent_dim, cfg.n_classes
        ch = [cfg.g_width * 2 ** i for i in reversed(range(n))]   # e.g. 512, 256, 128, 64 for 64x64
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.latent_dim + cfg.n_classes, ch[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True)]
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(ch[-1], cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z: (B, latent_dim); labels: (B, n_classes) one-hot or soft, for a conditional generator."""
        if self.n_classes:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            z = torch.cat([z, labels.to(z.dtype)], 1)
        return self.net(z[:, :, None, None])


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per-sample normalisation over (C, H, W): keeps samples independent
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (batch, layer or none)")


class DCGANDiscriminator(nn.Module):
    """Strided convs with LeakyReLU(0.2) down to 4x4, then a 4x4 conv to one score per image.

    With n_classes > 0 it is the conditional critic: the label vector enters as n_classes
    extra constant channels of the image.
    """

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        n = n_doublings(cfg.image_size)
        self.n_classes = cfg.n_classes
        ch = [cfg.d_width * 2 ** i for i in range(n)]
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels + cfg.n_classes, ch[0], 4, 2, 1),
                                   nn.LeakyReLU(0.2, inplace=True)]   # no norm on the first layer (DCGAN)
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=cfg.d_norm == "none"), _norm(cfg.d_norm, b),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(ch[-1], 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            if labels is None:
                raise ValueError("a conditional critic needs labels")
            maps = labels.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, maps], 1)
        return self.net(x).flatten(1).squeeze(1)



def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent rows a and b (rows, d) at fractions t (steps,) ->
    (rows, steps, d); stays on the Gaussian shell where linear interpolation would shrink norms."""
    a, b, t = a[:, None, :], b[:, None, :], t.to(a)[None, :, None]
    cos = (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b
