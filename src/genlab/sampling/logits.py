"""Choosing the next token from logits: temperature, top-k, top-p (nucleus), greedy.

Temperature 0 means greedy. Shared by every autoregressive recipe (LSTM, GPT, Music Transformer).
"""
from __future__ import annotations

import torch

from ..errors import ConfigError


def check_sampling_options(temperature: float, top_k: int, top_p: float, repetition_penalty: float = 1.0) -> None:
    """Raise a ConfigError naming the first invalid option."""
    if not repetition_penalty > 0:
        raise ConfigError(f"repetition_penalty must be > 0 (1 = off), got {repetition_penalty}")
    if not temperature >= 0:
        raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k < 0:
        raise ConfigError(f"top_k must be >= 0 (0 = off), got {top_k}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must lie in (0, 1], got {top_p}")


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set logits outside the top-k / nucleus to -inf. logits: (batch, vocab)."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens before it already reach top_p (the top token always stays)
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def penalize_repetition(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al. 2019): the logit of every token in `seen`
    (batch, T) is divided by `penalty` when positive and multiplied by it when negative, so
    penalty > 1 makes repeating a token less likely. logits: (batch, vocab)."""
    if penalty == 1.0:
        return logits
    scores = logits.gather(-1, seen)
    return logits.scatter(-1, seen, torch.where(scores > 0, scores / penalty, scores * penalty))


def next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick one token per row of `logits` (batch, vocab) -> (batch,) long."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = logits.softmax(-1)
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
