"""A small CLIP (Radford et al. 2021): an image CNN and a text Transformer mapped into one
embedding space, trained so that matching (image, caption) pairs score highest.

    image  (N, C, H, W) -> CNN to a ~4x4 map -> Linear over the map -> L2-normalise -> (N, D)
    tokens (N, L)       -> Transformer (causal) -> state at <eos> -> Linear -> L2-normalise -> (N, D)
    logits = exp(logit_scale) * image_emb @ text_emb.T      (logit_scale learned, clamped at log 100)
    loss   = (cross_entropy(logits, diag) + cross_entropy(logits.T, diag)) / 2

The text side is a module of its own (`TextEncoder`) so that other models can condition on it;
`load_clip_run` reads a trained `clip` run directory (a text-conditional diffusion run copies the
model into its own run directory, see recipes/diffusion.py).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.io import save_safetensors, write_text
from ..errors import RunDirError
from ..tokenizers import Tokenizer, load_tokenizer

MAX_LOGIT_SCALE = math.log(100.0)   # CLIP clamps the temperature so logits stay <= 100x cosines


@dataclass
class CLIPConfig:
    image_size: int = 16
    channels: int = 3
    image_width: int = 32          # channels of the first conv stage (doubled per stage)
    image_pool: str = "flatten"    # flatten: a linear map of the whole final map | mean: global average pool
    vocab_size: int = 512
    context: int = 48              # tokens per caption (incl. <eos>); longer captions are cut
    text_width: int = 96
    text_layers: int = 2
    text_heads: int = 4
    embed_dim: int = 64            # the joint embedding space


@dataclass
class TextEncoderConfig:
    vocab_size: int = 512
    context: int = 48
    width: int = 96
    layers: int = 2
    heads: int = 4
    embed_dim: int = 64


POOLS = ("flatten", "mean")


class ImageEncoder(nn.Module):
    """Conv stages (conv-GroupNorm-GELU, stride 2) down to 3x3 or 4x4, then a projection of the
    whole map (`flatten`, the default) or of its average (`mean`). Averaging dilutes a feature
    that covers one cell of the map 16-fold, such as the faces' smile (a few pixels at the mouth;
    see BENCHMARKS.md, text to image)."""

    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        if cfg.image_pool not in POOLS:
            raise ValueError(f"image_pool must be one of {', '.join(POOLS)}, got {cfg.image_pool!r}")
        layers, c_in, c, size = [], cfg.channels, cfg.image_width, cfg.image_size
        while True:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.GroupNorm(8, c), nn.GELU()]
            if size <= 4:
                break
            layers += [nn.Conv2d(c, c * 2, 3, stride=2, padding=1), nn.GroupNorm(8, c * 2), nn.GELU()]
            c_in, c, size = c * 2, c * 2, (size + 1) // 2     # a stride-2, padding-1 conv rounds up
        self.net = nn.Sequential(*layers)
        self.pool = cfg.image_pool
        self.proj = nn.Linear(c * size * size if self.pool == "flatten" else c, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x)
        return self.proj(h.flatten(1) if self.pool == "flatten" else h.mean(dim=(2, 3)))


class TextEncoder(nn.Module):
    """Token + position embeddings, pre-norm causal Transformer, the state at each caption's
    <eos> token, a projection into the joint space (not normalised: callers do)."""

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos = nn.Parameter(torch.randn(cfg.context, cfg.width) * 0.01)
        layer = nn.TransformerEncoderLayer(cfg.width, cfg.heads, 4 * cfg.width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.proj = nn.Linear(cfg.width, cfg.embed_dim, bias=False)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(cfg.context), persistent=False)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (N, L) with L <= context; lengths (N,): each caption's <eos> is at lengths - 1."""
        L = ids.shape[1]
        h = self.tok(ids) + self.pos[:L]
        h = self.norm(self.blocks(h, mask=self.mask[:L, :L], is_causal=True))
        return self.proj(h[torch.arange(len(ids), device=ids.device), lengths - 1])


def tokenize(tokenizer: Tokenizer, texts: Sequence[str], context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Captions -> (ids (N, L) padded with <eos>, lengths (N,)); each is cut to context - 1
    tokens and ends with <eos>, L is the longest length in the batch."""
    eos = tokenizer.eos_id if tokenizer.eos_id is not None else 0
    rows = [tokenizer.encode(t)[:context - 1] + [eos] for t in texts]
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), eos, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return ids, torch.tensor([len(r) for r in rows], dtype=torch.long)


class CLIP(nn.Module):
    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        self.cfg = cfg
        self.image = ImageEncoder(cfg)
        self.text = TextEncoder(text_config(cfg))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(x), dim=-1)

    def encode_text(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(ids, lengths), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def forward(self, x: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The symmetric contrastive loss of a batch of matching pairs."""
        return clip_loss(self.encode_image(x), self.encode_text(ids, lengths), self.scale())


def text_config(cfg: CLIPConfig) -> TextEncoderConfig:
    return TextEncoderConfig(vocab_size=cfg.vocab_size, context=cfg.context, width=cfg.text_width,
                             layers=cfg.text_layers, heads=cfg.text_heads, embed_dim=cfg.embed_dim)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Mean of the image->text and text->image cross-entropies over scaled cosine similarities;
    pair i is image i with text i (embeddings already normalised)."""
    logits = scale * image_emb @ text_emb.t()
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


# ---------------------------------------------------------------------------------- a trained clip run
def _saved_defaults(saved: dict) -> dict:
    """A CLIP saved before the flatten readout existed pooled by the mean."""
    return {} if "image_pool" in saved else {"image_pool": "mean"}


def load_clip_run(run_dir: str | Path) -> tuple[CLIP, Tokenizer]:
    """The CLIP model (best weights, eval mode, frozen) and tokenizer of a `clip` run directory."""
    from ..engine.rundir import RunDir

    run = RunDir(run_dir)
    name, saved = run.read_config()
    if name != "clip":
        raise RunDirError(f"{run_dir} is a {name!r} run, not a clip run (train one with `genlab train clip`)")
    keys = {f.name for f in fields(CLIPConfig)} - {"vocab_size"}
    tokenizer = load_tokenizer(Path(run_dir))
    model = CLIP(CLIPConfig(vocab_size=tokenizer.vocab_size, **{k: saved[k] for k in keys if k in saved}
                            | _saved_defaults(saved)))
    run.load_weights({"clip": model}, "best")
    return model.eval().requires_grad_(False), tokenizer


def save_clip(directory: str | Path, model: CLIP, tokenizer: Tokenizer) -> None:
    """A trained CLIP as three files another run can carry: clip.json (config), clip.safetensors
    (weights), tokenizer.json."""
    d = Path(directory)
    write_text(d / "clip.json", json.dumps(asdict(model.cfg)))
    save_safetensors({k: v.detach().cpu() for k, v in model.state_dict().items()}, d / "clip.safetensors")
    tokenizer.save(d)


def load_clip(directory: str | Path) -> tuple[CLIP, Tokenizer]:
    """Read what save_clip wrote (eval mode, frozen)."""
    from safetensors.torch import load_file

    d = Path(directory)
    try:
        saved = json.loads((d / "clip.json").read_text(encoding="utf-8"))
        model = CLIP(CLIPConfig(**saved | _saved_defaults(saved)))
        model.load_state_dict(load_file(str(d / "clip.safetensors")))
    except Exception as e:  # missing file, bad JSON, safetensors' own errors, shape mismatch
        raise RunDirError(f"missing or corrupt CLIP files (clip.json, clip.safetensors) in {d}: "
                          f"{str(e).splitlines()[0]}") from None
    return model.eval().requires_grad_(False), load_tokenizer(d)


@torch.no_grad()
def embed_texts(model: CLIP, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int = 512) -> torch.Tensor:
    """Normalised text embeddings (N, embed_dim) on the CPU."""
    device = model.logit_scale.device
    out = [model.encode_text(*(t.to(device) for t in tokenize(tokenizer, texts[i:i + batch_size], model.cfg.context)))
           .float().cpu() for i in range(0, len(texts), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.cfg.embed_dim)


@torch.no_grad()
def embed_images(model: CLIP, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Normalised image embeddings (N, embed_dim) on the CPU of float images in [-1, 1]."""
    device = model.logit_scale.device
    out = [model.encode_image(images[i:i + batch_size].to(device)).float().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.cfg.embed_dim)


def clip_score(model: CLIP, tokenizer: Tokenizer, images: torch.Tensor, texts: Sequence[str]) -> float:
    """CLIP score: 100 x the mean cosine between each image and its text (Hessel et al. 2021,
    without their clipping at 0), in this CLIP's embedding space."""
    cos = (embed_images(model, images) * embed_texts(model, tokenizer, texts)).sum(-1)
    return float(100 * cos.mean())


__all__ = ["CLIP", "CLIPConfig", "ImageEncoder", "POOLS", "TextEncoder", "TextEncoderConfig", "clip_loss", "clip_score",
           "embed_images", "embed_texts", "load_clip", "load_clip_run", "save_clip", "text_config", "tokenize"]
