"""A recurrent language model seen through the forward contract of sampling/generate.py.

A recurrent model computes `logits, state = model(idx, state)`; its state is everything a
key/value cache would hold, so it serves as the cache. With this adapter an LSTM decodes
through the same code as a GPT: seeding, stop strings, top-k/top-p, streaming.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class RecurrentDecoder(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, idx: torch.Tensor, past_kv: Any = None, use_cache: bool = False,
                last_only: bool = False) -> torch.Tensor | tuple[torch.Tensor, Any]:
        logits, state = self.model(idx, past_kv)
        if last_only:
            logits = logits[:, -1:]
        return (logits, state) if use_cache else logits

    @staticmethod
    def select_cache(cache: tuple[torch.Tensor, ...], rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Keep batch rows `rows` of the state; recurrent states put the batch second (layers, B, H)."""
        return tuple(t[:, rows] for t in cache)
