"""Images that are not faces: the negatives the attribute judge's face gate learns to refuse.

A judge trained on faces alone answers "glasses" or "no glasses" for anything, so a generator
that drew garbage for one label could still score well. The judge therefore also learns a
"face" output, with these negatives (every kind a broken or untrained generator produces):

    blank      one colour per image (black, white, grey and random colours), some with a gradient
    uniform    uniform noise around a random colour, half-widths from 0.02 to 1
    gaussian   Gaussian noise around a random colour, std from 0.02 to 1
    smooth     low-resolution noise upsampled (blotches), several scales
    conv       outputs of untrained conv decoders (latent -> 4x4 -> upsample + conv ... -> tanh),
               random widths, activations and weight scales (flat grey to saturated)
    mlp        outputs of untrained MLP decoders (latent -> hidden -> pixels -> tanh)
    shuffled   real faces with their pixels permuted
    patches    real faces cut into 4x4 or 8x8 tiles and shuffled
    drowned    real faces under Gaussian noise of std 0.8 to 1.5
    mean       means of 16 to all faces (the mean face is a blur no generator should be paid for)

Everything is drawn from a torch.Generator, so a bank is deterministic per seed. The networks
here are built from random tensors in this module (no model or recipe is imported).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

KINDS: tuple[str, ...] = ("blank", "uniform", "gaussian", "smooth", "conv", "mlp", "shuffled", "patches",
                          "drowned", "mean")


def _u(g: torch.Generator, n: int, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, *shape, generator=g)


def _log_u(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return torch.exp(_u(g, n, math.log(lo), math.log(hi)))


def _colours(g: torch.Generator, n: int, c: int) -> torch.Tensor:
    """(n, c, 1, 1) colours: a quarter black / white / mid-grey exactly, the rest random."""
    col = _u(g, n, -1.0, 1.0, c, 1, 1)
    special = torch.tensor([-1.0, 1.0, 0.0])[torch.randint(0, 3, (n,), generator=g)]
    pick = torch.rand(n, generator=g) < 0.25
    col[pick] = special[pick].view(-1, 1, 1, 1).expand(-1, c, 1, 1)
    return col


def blank(n: int, size: int, c: int, g: torch.Generator) -> torch.Tensor:
    x = _colours(g, n, c).expand(n, c, size, size).clone()
    ramp = torch.linspace(-1, 1, size)
    angle = _u(g, n, 0, 2 * math.pi)
    grad = torch.cos(angle)[:, None, None] * ramp[None, :, None] + torch.sin(angle)[:, None, None] * ramp[None, None, :]
    strength = _u(g, n, 0, 0.6) * (torch.rand(n, generator=g) < 0.4)
    return (x + strength[:, None, None, None] * grad[:, None]).clamp(-1, 1)


def uniform(n: int, size: int, c: int, g: torch.Generator) -> torch.Tensor:
    centre = _colours(g, n, c) * (torch.rand(n, 1, 1, 1, generator=g) < 0.7)   # often around 0
    width = _log_u(g, n, 0.02, 1.0).view(-1, 1, 1, 1)
    return (centre + width * (2 * torch.rand(n, c, size, size, generator=g) - 1)).clamp(-1, 1)


def gaussian(n: int, size: int, c: int, g: torch.Generator) -> torch.Tensor:
    centre = _colours(g, n, c) * (torch.rand(n, 1, 1, 1, generator=g) < 0.7)
    std = _log_u(g, n, 0.02, 1.0).view(-1, 1, 1, 1)
    return (centre + std * torch.randn(n, c, size, size, generator=g)).clamp(-1, 1)


def smooth(n: int, size: int, c: int, g: torch.Generator) -> torch.Tensor:
    out = torch.empty(n, c, size, size)
    for i in range(n):
        k = int(torch.randint(2, max(3, size // 2) + 1, (1,), generator=g))
        coarse = torch.randn(1, c, k, k, generator=g) * float(_log_u(g, 1, 0.1, 1.5))
        out[i] = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0]
    return (out + _colours(g, n, c) * 0.5).clamp(-1, 1)


def _act(h: torch.Tensor, kind: int) -> torch.Tensor:
    return (F.relu, lambda t: F.leaky_relu(t, 0.2), torch.tanh)[kind](h)


def conv(n: int, size: int, c: int, g: torch.Generator, per_net: int = 8) -> torch.Tensor:
    """Outputs of untrained DCGAN-like decoders, a new random network every `per_net` images."""
    out = []
    for start in range(0, n, per_net):
        m = min(per_net, n - start)
        width, latent = int(2 ** torch.randint(3, 6, (1,), generator=g)), 16
        gain = float(_log_u(g, 1, 0.3, 3.0))
        act = int(torch.randint(0, 3, (1,), generator=g))
        norm = bool(torch.rand(1, generator=g) < 0.5)
        w0 = torch.randn(latent, width * 16, generator=g) * gain / math.sqrt(latent)
        h = (torch.randn(m, latent, generator=g) @ w0).view(m, width, 4, 4)
        s = 4
        while s < size:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            w = torch.randn(width, width, 3, 3, generator=g) * gain / math.sqrt(9 * width)
            h = F.conv2d(h, w, padding=1)
            if norm:  # batch-norm statistics of an untrained network: standardize per channel
                h = (h - h.mean((0, 2, 3), keepdim=True)) / (h.std((0, 2, 3), keepdim=True) + 1e-5)
            h = _act(h, act)
            s *= 2
        w = torch.randn(c, width, 3, 3, generator=g) * float(_log_u(g, 1, 0.02, 3.0)) / math.sqrt(9 * width)
        x = torch.tanh(F.conv2d(h, w, padding=1) + _u(g, 1, -0.5, 0.5).view(1, 1, 1, 1))
        out.append(F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False) if s != size else x)
    return torch.cat(out)


def mlp(n: int, size: int, c: int, g: torch.Generator, per_net: int = 8) -> torch.Tensor:
    """Outputs of untrained MLP decoders (latent -> hidden -> pixels -> tanh)."""
    out = []
    for start in range(0, n, per_net):
        m = min(per_net, n - start)
        hidden, latent = int(2 ** torch.randint(5, 9, (1,), generator=g)), 32
        w1 = torch.randn(latent, hidden, generator=g) * float(_log_u(g, 1, 0.3, 3.0)) / math.sqrt(latent)
        w2 = torch.randn(hidden, c * size * size, generator=g) * float(_log_u(g, 1, 0.02, 3.0)) / math.sqrt(hidden)
        h = _act(torch.randn(m, latent, generator=g) @ w1, int(torch.randint(0, 3, (1,), generator=g)))
        out.append(torch.tanh(h @ w2).view(m, c, size, size))
    return torch.cat(out)


def shuffled(faces: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n, c, h, w = faces.shape
    flat = faces.reshape(n, c, h * w)
    idx = torch.stack([torch.randperm(h * w, generator=g) for _ in range(n)])
    return torch.gather(flat, 2, idx[:, None].expand(-1, c, -1)).view(n, c, h, w)


def patches(faces: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n, c, h, w = faces.shape
    out = faces.clone()
    for i in range(n):
        k = 4 if (torch.rand(1, generator=g) < 0.5 or h < 16) else 8      # tiles per side
        t = h // k
        if t < 1:
            continue
        tiles = faces[i, :, :t * k, :t * k].reshape(c, k, t, k, t).permute(1, 3, 0, 2, 4).reshape(k * k, c, t, t)
        tiles = tiles[torch.randperm(k * k, generator=g)]
        out[i, :, :t * k, :t * k] = tiles.reshape(k, k, c, t, t).permute(2, 0, 3, 1, 4).reshape(c, t * k, t * k)
    return out


def drowned(faces: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    std = _u(g, len(faces), 0.8, 1.5).view(-1, 1, 1, 1)
    return (faces + std * torch.randn(faces.shape, generator=g)).clamp(-1, 1)


def means(faces: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """Means of 16 to all of `faces` (the first is the mean of all)."""
    out = [faces.mean(0)]
    for _ in range(n - 1):
        k = int(torch.randint(16, max(17, len(faces) + 1), (1,), generator=g))
        out.append(faces[torch.randperm(len(faces), generator=g)[:k]].mean(0))
    return torch.stack(out)


def non_faces(n: int, size: int, channels: int, faces: torch.Tensor, seed: int) -> tuple[torch.Tensor, list[str]]:
    """n negatives (float NCHW in [-1, 1]) at `size`, about equally many of each kind, and the
    kind of each. `faces` (float NCHW at `size`, >= 16 of them) feeds the corrupted-face kinds."""
    g = torch.Generator().manual_seed(seed)
    per = [n // len(KINDS) + (i < n % len(KINDS)) for i in range(len(KINDS))]
    pick = lambda m: faces[torch.randint(0, len(faces), (m,), generator=g)]  # noqa: E731
    make = {"blank": lambda m: blank(m, size, channels, g), "uniform": lambda m: uniform(m, size, channels, g),
            "gaussian": lambda m: gaussian(m, size, channels, g), "smooth": lambda m: smooth(m, size, channels, g),
            "conv": lambda m: conv(m, size, channels, g), "mlp": lambda m: mlp(m, size, channels, g),
            "shuffled": lambda m: shuffled(pick(m), g), "patches": lambda m: patches(pick(m), g),
            "drowned": lambda m: drowned(pick(m), g), "mean": lambda m: means(faces, m, g)}
    xs, kinds = [], []
    for kind, m in zip(KINDS, per):
        if m:
            xs.append(make[kind](m).float())
            kinds += [kind] * m
    return torch.cat(xs).clamp(-1, 1), kinds
