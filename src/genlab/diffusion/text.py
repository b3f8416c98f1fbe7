"""Text conditioning for diffusion: a frozen CLIP text encoder (models/clip.py) turns captions of
the procedural faces (data/captions.py) into the condition a U-Net sees. The CLIP may have seen
another image size than the U-Net draws (its image side only scores samples, resized).

The condition is the caption's pooled, normalised joint-space embedding (no cross-attention);
classifier-free guidance drops it to the zero vector. The CLIP model and its tokenizer travel
with the diffusion run (clip.json, clip.safetensors, tokenizer.json), so that run loads without
the clip run it was trained from.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.captions import face_captions, prompt_for
from ..data.faces import ATTRIBUTES
from ..data.images import resize
from ..errors import ConfigError
from ..models.clip import CLIP, clip_score, embed_texts, load_clip, load_clip_run, save_clip
from ..tokenizers import Tokenizer


def attribute_prompts(combos: Sequence[Sequence[bool | int]], rng: np.random.Generator) -> list[str]:
    """A fresh phrasing asking for each row's attribute values (one value per name in ATTRIBUTES)."""
    return [prompt_for({a: bool(v) for a, v in zip(ATTRIBUTES, row)}, rng) for row in combos]


class TextCondition:
    """A frozen CLIP (its text side conditions, its image side scores) and its tokenizer."""

    def __init__(self, clip: CLIP, tokenizer: Tokenizer):
        self.clip, self.tokenizer = clip, tokenizer

    @classmethod
    def from_clip_run(cls, run_dir: str | Path) -> TextCondition:
        return cls(*load_clip_run(run_dir))

    @classmethod
    def load(cls, directory: str | Path) -> TextCondition:
        """Read the copy a diffusion run carries (see save)."""
        return cls(*load_clip(directory))

    def save(self, directory: str | Path) -> None:
        save_clip(directory, self.clip, self.tokenizer)

    @property
    def dim(self) -> int:
        return self.clip.cfg.embed_dim

    @property
    def null(self) -> torch.Tensor:
        """The condition classifier-free guidance drops to: the zero vector."""
        return torch.zeros(self.dim)

    def check_channels(self, channels: int) -> None:
        """The image side scores samples (CLIP score) resized to its own size, but cannot change colour."""
        if self.clip.cfg.channels != channels:
            raise ConfigError(f"the clip run saw {self.clip.cfg.channels}-channel images, this config says {channels}")

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, dim) pooled text embeddings on the CPU."""
        return embed_texts(self.clip, self.tokenizer, texts)

    def caption_embeddings(self, indices: Sequence[int] | np.ndarray, variants: int) -> torch.Tensor:
        """(variants, N, dim): the embedding of each phrasing of each face `indices` (seed 0)."""
        return torch.stack([self.embed(face_captions(indices, variant=v)) for v in range(variants)])

    def prompts(self, prompt: str, n: int, seed: int) -> list[str]:
        """n prompts: `prompt`, or a fresh phrasing of each glasses x blond x smiling combination in turn."""
        if prompt.strip():
            return [prompt.strip()] * n
        combos = list(itertools.product((False, True), repeat=len(ATTRIBUTES)))
        return attribute_prompts([combos[i % len(combos)] for i in range(n)], np.random.default_rng(seed))

    def score(self, images: torch.Tensor, texts: Sequence[str]) -> float:
        """The CLIP score of images (resized to the CLIP's image size) against their texts
        (models.clip.clip_score)."""
        return clip_score(self.clip, self.tokenizer, resize(images, self.clip.cfg.image_size), texts)


__all__ = ["TextCondition", "attribute_prompts"]
