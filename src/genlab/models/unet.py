"""An attention U-Net for diffusion models (Ho et al. 2020; Nichol & Dhariwal 2021).

A pure nn.Module: it maps (noisy images x_t, integer timesteps t, optional class labels y)
to a tensor shaped like x_t; or, instead of labels, text embeddings (N, text_dim). It knows nothing of noise schedules or of what the output
means (noise, x_0 or velocity); that is the business of genlab.diffusion.

Layout, top to bottom:
  time embedding  sinusoidal(t) -> Linear -> SiLU -> Linear  (+ class embedding, when used)
  conv_in         in_channels -> channels[0]
  down path       per level: `blocks` ResBlocks at that level's width (+ self-attention at
                  the chosen resolutions), then a stride-2 conv to the next width
  middle          ResBlock, self-attention, ResBlock at the deepest width
  up path         per level: `blocks` ResBlocks, each fed the skip of its twin on the way
                  down, then nearest-neighbour upsample + conv to the previous width
  conv_out        GroupNorm -> SiLU -> conv to out_channels (zero-initialised)
The class embedding has one extra row, index `num_classes`, the "null" class used for
classifier-free guidance (Ho & Salimans 2022). Text conditioning (`text_dim` > 0) adds a map of
a pooled text embedding (e.g. CLIP's, unit length) to the time embedding; the zero vector is the
"null" text. The map (`text_projection`) is "linear", initialised N(0, 1) so that a unit-length
embedding lands as far out as a class embedding row does (norm about sqrt(time_dim)), or "mlp"
(Linear-SiLU-Linear at PyTorch's default init, runs saved before 2026-11-30), whose outputs start
at norm about 0.7, two prompts about 0.3 apart instead of 16: with it a 2-pixel detail such as
the faces' smile was still barely conditioned after 3,000 steps (BENCHMARKS.md, text to image).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

TEXT_PROJECTIONS = ("linear", "mlp")   # how a pooled text embedding joins the time embedding


@dataclass
class UNetConfig:
    image_size: int = 32
    in_channels: int = 3
    out_channels: int = 0                   # 0 = same as in_channels
    channels: tuple[int, ...] = (32, 64, 128)   # width of each resolution level
    blocks: int = 1                         # ResBlocks per level on the way down
    attention_resolutions: tuple[int, ...] = (8,)   # feature-map sizes that get self-attention
    head_channels: int = 32                 # channels per attention head
    groups: int = 8                         # GroupNorm groups (capped by the channel count)
    dropout: float = 0.0
    num_classes: int = 0                    # 0 = unconditional; else labels 0..num_classes-1 (+ null)
    text_dim: int = 0                       # > 0: conditioned on pooled text embeddings of this size
    text_projection: str = "linear"         # linear | mlp: how the text embedding joins the time embedding
    time_dim: int = 0                       # 0 = 4 * channels[0]

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        self.attention_resolutions = tuple(int(r) for r in self.attention_resolutions)

    @property
    def null_class(self) -> int:
        return self.num_classes


# Presets. "book": 64x64, widths 128/256/512/1024 (about 133M parameters, see tests).
UNET_PRESETS: dict[str, dict] = {
    "cpu": dict(image_size=32, channels=(32, 64, 128), blocks=1, attention_resolutions=(8,), groups=8),
    "book": dict(image_size=64, channels=(128, 256, 512, 1024), blocks=1, attention_resolutions=(16, 8),
                 head_channels=64, groups=32),
}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, shape (N, dim) (Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def _norm(ch: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(ch, groups), ch)


def _zero(module: nn.Module) -> nn.Module:
    """Zero-initialise the last layer of a residual branch, so each block starts as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    def __init__(self, ch_in: int, ch_out: int, time_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = _norm(ch_in, groups)
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, padding=1)
        self.time = nn.Linear(time_dim, ch_out)
        self.norm2 = _norm(ch_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(ch_out, ch_out, 3, padding=1))
        self.skip = nn.Conv2d(ch_in, ch_out, 1) if ch_in != ch_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, ch: int, head_channels: int, groups: int):
        super().__init__()
        self.heads = max(1, ch // head_channels)
        self.norm = _norm(ch, groups)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = _zero(nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)          # (n, heads, hw, c/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class Downsample(nn.Module):
    """Stride-2 conv that also moves to the next level's width."""

    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.conv = nn.Conv2d(ch_in, ch_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a conv to the previous level's width (no checkerboard artefacts)."""

    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.conv = nn.Conv2d(ch_in, ch_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """The ResBlocks of one resolution level, each optionally followed by self-attention."""

    def __init__(self, ch_in: int, ch: int, time_dim: int, attention: bool, cfg: UNetConfig):
        super().__init__()
        self.res = nn.ModuleList(ResBlock(ch_in, ch, time_dim, cfg.groups, cfg.dropout) for _ in range(cfg.blocks))
        self.attn = nn.ModuleList(SelfAttention(ch, cfg.head_channels, cfg.groups) if attention
                                  else nn.Identity() for _ in range(cfg.blocks))


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        widths, n_levels = cfg.channels, len(cfg.channels)
        if cfg.image_size % 2 ** (n_levels - 1):
            raise ValueError(f"image_size {cfg.image_size} is not divisible by 2^{n_levels - 1} "
                             f"({n_levels} levels)")
        if cfg.blocks < 1:
            raise ValueError("blocks must be >= 1")
        ch0 = widths[0]
        tdim = cfg.time_dim or 4 * ch0
        self.time_mlp = nn.Sequential(nn.Linear(ch0, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.class_emb = nn.Embedding(cfg.num_classes + 1, tdim) if cfg.num_classes > 0 else None
        self.text_emb = self._text_projection(cfg, tdim) if cfg.text_dim > 0 else None
        if self.class_emb is not None and self.text_emb is not None:
            raise ValueError("a U-Net is conditioned on class labels or on text, not both")
        self.conv_in = nn.Conv2d(cfg.in_channels, ch0, 3, padding=1)

        res = [cfg.image_size // 2 ** i for i in range(n_levels)]
        attn = [r in cfg.attention_resolutions for r in res]
        # Down: each level keeps its width; the downsample moves to the next width.
        self.down = nn.ModuleList(Level(w, w, tdim, a, cfg) for w, a in zip(widths, attn))
        self.downsample = nn.ModuleList(Downsample(widths[i], widths[i + 1]) for i in range(n_levels - 1))
        top = widths[-1]
        self.mid1 = ResBlock(top, top, tdim, cfg.groups, cfg.dropout)
        self.mid_attn = SelfAttention(top, cfg.head_channels, cfg.groups)
        self.mid2 = ResBlock(top, top, tdim, cfg.groups, cfg.dropout)
        # Up (listed deepest first): each ResBlock also takes the skip of its twin on the way down.
        self.up = nn.ModuleList(Level(2 * widths[i], widths[i], tdim, attn[i], cfg) for i in reversed(range(n_levels)))
        self.upsample = nn.ModuleList(Upsample(widths[i], widths[i - 1]) for i in reversed(range(1, n_levels)))
        self.norm_out = _norm(ch0, cfg.groups)
        self.conv_out = _zero(nn.Conv2d(ch0, cfg.out_channels or cfg.in_channels, 3, padding=1))

    @staticmethod
    def _text_projection(cfg: UNetConfig, tdim: int) -> nn.Module:
        if cfg.text_projection == "mlp":
            return nn.Sequential(nn.Linear(cfg.text_dim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        if cfg.text_projection not in TEXT_PROJECTIONS:
            raise ValueError(f"text_projection must be one of {', '.join(TEXT_PROJECTIONS)}, got {cfg.text_projection!r}")
        # Like nn.Embedding's N(0, 1) rows: a unit-length text embedding maps to norm ~sqrt(tdim),
        # so two prompts that differ in one attribute start as far apart as two class labels.
        proj = nn.Linear(cfg.text_dim, tdim, bias=False)
        nn.init.normal_(proj.weight)
        return proj

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, C, H, W); t: (N,) or scalar timesteps; y: (N,) labels in [0, num_classes]
        where num_classes means "no label", or for text models (N, text_dim) text embeddings where
        zero rows mean "no text" (None = all unconditioned)."""
        t = torch.as_tensor(t, device=x.device)
        t = t.reshape(1).expand(x.shape[0]) if t.numel() == 1 else t
        emb = self.time_mlp(timestep_embedding(t, self.cfg.channels[0]).to(x.dtype))
        if self.class_emb is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.cfg.null_class, dtype=torch.long, device=x.device)
            emb = emb + self.class_emb(y)
        elif self.text_emb is not None:
            if y is None:
                y = torch.zeros(x.shape[0], self.cfg.text_dim, device=x.device)
            emb = emb + self.text_emb(y.to(emb.dtype))
        elif y is not None:
            raise ValueError("this U-Net is unconditional (num_classes=0, text_dim=0) but a condition was given")

        h = self.conv_in(x)
        skips = []
        for i, level in enumerate(self.down):
            for res, attn in zip(level.res, level.attn):
                h = attn(res(h, emb))
                skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for i, level in enumerate(self.up):
            for res, attn in zip(level.res, level.attn):
                h = attn(res(torch.cat([h, skips.pop()], dim=1), emb))
            if i < len(self.upsample):
                h = self.upsample[i](h)
        return self.conv_out(F.silu(self.norm_out(h)))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def unet_config(preset: str, **overrides) -> UNetConfig:
    """A UNetConfig from a named preset ("cpu", "book") with keyword overrides."""
    if preset not in UNET_PRESETS:
        raise ValueError(f"unknown U-Net preset {preset!r} (available: {', '.join(UNET_PRESETS)})")
    return UNetConfig(**{**UNET_PRESETS[preset], **overrides})


__all__ = ["UNetConfig", "UNet", "UNET_PRESETS", "unet_config", "timestep_embedding", "count_parameters"]
