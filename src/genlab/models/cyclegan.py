"""CycleGAN networks (Zhu et al. 2017): a ResNet generator and a PatchGAN discriminator.

Generator: 7x7 conv, `n_down` stride-2 convs, `n_blocks` residual blocks, `n_down` transposed
convs, 7x7 conv to tanh, with instance norm and reflection padding (Johnson et al. 2016).
Discriminator: the PatchGAN, one real/fake score per overlapping patch (70x70 at 256x256 with
n_layers=3). Weights start at N(0, 0.02) as in the paper, and the init is actually applied.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .gan import dcgan_init


@dataclass
class CycleGANConfig:
    image_size: int = 256
    channels: int = 3
    g_width: int = 64        # ngf
    n_down: int = 2          # stride-2 downsamplings in the generator
    n_blocks: int = 9        # residual blocks (9 for 256x256, 6 for 128x128 in the paper)
    d_width: int = 64        # ndf
    d_layers: int = 3        # stride-2 convs of the PatchGAN (3 = 70x70 patches)
    input_skip: bool = False # generator output = tanh(f(x) + atanh(x)): starts at the identity, learns the change
    upsample: str = "transpose"  # transpose (paper) | resize (nearest x2 + conv: no checkerboard artifacts)


def _inorm(c: int) -> nn.Module:
    # affine=True so dcgan_init's N(1, 0.02) scales exist, as in the reference implementation
    return nn.InstanceNorm2d(c, affine=True)


class ResidualBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), _inorm(c), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), _inorm(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, cfg: CycleGANConfig):
        super().__init__()
        if cfg.upsample not in ("transpose", "resize"):
            raise ValueError(f"upsample must be transpose or resize, got {cfg.upsample!r}")
        if cfg.image_size % (2 ** cfg.n_down):
            raise ValueError(f"image_size {cfg.image_size} must be divisible by 2**n_down = {2 ** cfg.n_down}")
        w = cfg.g_width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(cfg.channels, w, 7, bias=False), _inorm(w),
                                   nn.ReLU(inplace=True)]
        for i in range(cfg.n_down):
            a, b = w * 2 ** i, w * 2 ** (i + 1)
            layers += [nn.Conv2d(a, b, 3, 2, 1, bias=False), _inorm(b), nn.ReLU(inplace=True)]
        c = w * 2 ** cfg.n_down
        layers += [ResidualBlock(c) for _ in range(cfg.n_blocks)]
        for i in reversed(range(cfg.n_down)):
            a, b = w * 2 ** (i + 1), w * 2 ** i
            up: list[nn.Module] = ([nn.ConvTranspose2d(a, b, 3, 2, 1, output_padding=1, bias=False)]
                                   if cfg.upsample == "transpose" else
                                   [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, 1, 1, bias=False)])
            layers += [*up, _inorm(b), nn.ReLU(inplace=True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, cfg.channels, 7)]
        self.net = nn.Sequential(*layers)
        self.input_skip = cfg.input_skip
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x)
        if self.input_skip:  # a translation that keeps most pixels only has to learn the difference
            h = h + torch.atanh(x.float().clamp(-0.999, 0.999)).to(h.dtype)
        return torch.tanh(h)


class PatchDiscriminator(nn.Module):
    """Returns (B, 1, h, w) patch logits; the least-squares loss averages over them."""

    def __init__(self, cfg: CycleGANConfig):
        super().__init__()
        w = cfg.d_width
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, w, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c = w
        for i in range(1, cfg.d_layers):
            nc = w * min(2 ** i, 8)
            layers += [nn.Conv2d(c, nc, 4, 2, 1, bias=False), _inorm(nc), nn.LeakyReLU(0.2, inplace=True)]
            c = nc
        nc = w * min(2 ** cfg.d_layers, 8)
        layers += [nn.Conv2d(c, nc, 4, 1, 1, bias=False), _inorm(nc), nn.LeakyReLU(0.2, inplace=True),
                   nn.Conv2d(nc, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ImagePool(nn.Module):
    """History of generated images (Shrivastava et al. 2017): the discriminator sees, half the time,
    a fake from an earlier step instead of the newest one, which damps oscillation.

    The pool lives in buffers, so it is checkpointed with the weights and a resumed run continues
    with the same history; draws come from the torch.Generator passed in (reproducible).
    """

    def __init__(self, size: int, shape: tuple[int, int, int]):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(max(size, 0), *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if self.size <= 0:
            return images
        out = images.detach().clone()
        for k in range(len(out)):
            n = int(self.count)
            if n < self.size:
                self.images[n] = out[k].to(self.images.dtype)
                self.count += 1
            elif torch.rand((), generator=g).item() < 0.5:
                i = int(torch.randint(self.size, (), generator=g))
                old = self.images[i].to(out.dtype).clone()
                self.images[i] = out[k].to(self.images.dtype)
                out[k] = old
        return out


class CycleGenerators(nn.Module):
    """G_ab and G_ba; forward runs the full cycle (and identity mappings) in one call, so DDP
    sees one forward per backward."""

    def __init__(self, cfg: CycleGANConfig):
        super().__init__()
        self.g_ab, self.g_ba = ResnetGenerator(cfg), ResnetGenerator(cfg)

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor, identity: bool = True) -> dict[str, torch.Tensor]:
        n = real_a.shape[0]
        fake_b = self.g_ab(real_a)
        # G_ba on [real_b, fake_b (+ real_a for identity)] in one batch; same for G_ab below
        out_ba = self.g_ba(torch.cat([real_b, fake_b] + ([real_a] if identity else [])))
        fake_a, rec_a = out_ba[:real_b.shape[0]], out_ba[real_b.shape[0]:real_b.shape[0] + n]
        out_ab = self.g_ab(torch.cat([fake_a] + ([real_b] if identity else [])))
        rec_b = out_ab[:fake_a.shape[0]]
        res = {"fake_b": fake_b, "fake_a": fake_a, "rec_a": rec_a, "rec_b": rec_b}
        if identity:
            res["idt_a"], res["idt_b"] = out_ba[real_b.shape[0] + n:], out_ab[fake_a.shape[0]:]
        return res


class CycleDiscriminators(nn.Module):
    """D_a and D_b in one module (one forward per backward under DDP)."""

    def __init__(self, cfg: CycleGANConfig):
        super().__init__()
        self.d_a, self.d_b = PatchDiscriminator(cfg), PatchDiscriminator(cfg)

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.d_a(x_a), self.d_b(x_b)
