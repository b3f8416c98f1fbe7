"""Decoding for encoder-decoder models: greedy (batched or streamed) and batched beam search.

The model follows models/seq2seq.py's contract: `encode(src) -> (memory, src_mask)`,
`new_cache()`, `decode(tokens, memory, src_mask, cache) -> logits`. Every sentence gets at
most `max_len_ratio * source_length + max_len_extra` target tokens (and never more than the
model's positions); a sentence that reaches its limit is ended there.

Beam search keeps `beam` hypotheses per sentence, all in one batch of (sentences x beam) rows.
A hypothesis that emits </s> stays in its beam with its score frozen; at the end the best
hypothesis by score / ((5 + length) / 6) ** length_penalty (GNMT's length normalisation; 0 =
raw log-probability) is returned. With beam=1 this is greedy decoding, token for token.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from ..errors import ConfigError


def check_decoding_options(beam: int, length_penalty: float, max_len_ratio: float, max_len_extra: int) -> None:
    if beam < 1:
        raise ConfigError(f"beam must be >= 1, got {beam}")
    if length_penalty < 0:
        raise ConfigError(f"length_penalty must be >= 0, got {length_penalty}")
    if max_len_ratio <= 0 or max_len_extra < 0:
        raise ConfigError(f"max_len_ratio must be > 0 and max_len_extra >= 0, got {max_len_ratio}, {max_len_extra}")


def _limits(src: torch.Tensor, pad_id: int, model: nn.Module, max_len_ratio: float, max_len_extra: int
            ) -> torch.Tensor:
    """Most target tokens per sentence (</s> included), within the model's positions (BOS takes one)."""
    lengths = (src != pad_id).sum(1).float()
    limit = (lengths * max_len_ratio).long() + max_len_extra
    return limit.clamp(1, model.config.max_len - 1)


def _step_logprobs(model: nn.Module, tokens: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor,
                   cache, step: int, limits: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Log-probabilities of the next token (rows, vocab); rows at their length limit must say </s>."""
    logp = torch.log_softmax(model.decode(tokens, memory, src_mask, cache)[:, -1].float(), dim=-1)
    at_limit = limits <= step + 1
    if at_limit.any():
        forced = torch.full_like(logp[0], float("-inf"))
        forced[eos_id] = 0.0
        logp[at_limit] = forced
    return logp


def _strip(row: list[int], eos_id: int) -> list[int]:
    return row[:row.index(eos_id)] if eos_id in row else row


@torch.no_grad()
def greedy_stream(model: nn.Module, src: torch.Tensor, bos_id: int, eos_id: int, pad_id: int,
                  max_len_ratio: float = 1.5, max_len_extra: int = 10) -> Iterator[torch.Tensor]:
    """Yield the next token of every sentence (B,) step by step; finished rows repeat </s>."""
    memory, src_mask = model.encode(src)
    limits = _limits(src, pad_id, model, max_len_ratio, max_len_extra)
    cache = model.new_cache()
    tokens = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    for step in range(int(limits.max())):
        logp = _step_logprobs(model, tokens, memory, src_mask, cache, step, limits, eos_id)
        nxt = torch.where(done, torch.full_like(done, eos_id, dtype=torch.long), logp.argmax(-1))
        done = done | (nxt == eos_id)
        yield nxt
        if done.all():
            return
        tokens = nxt[:, None]


def greedy_decode(model: nn.Module, src: torch.Tensor, bos_id: int, eos_id: int, pad_id: int,
                  max_len_ratio: float = 1.5, max_len_extra: int = 10) -> list[list[int]]:
    """Most likely token at every step; the target tokens of each sentence without </s>."""
    steps = list(greedy_stream(model, src, bos_id, eos_id, pad_id, max_len_ratio, max_len_extra))
    if not steps:
        return [[] for _ in range(src.shape[0])]
    return [_strip(row, eos_id) for row in torch.stack(steps, 1).tolist()]


@torch.no_grad()
def beam_search(model: nn.Module, src: torch.Tensor, bos_id: int, eos_id: int, pad_id: int, beam: int = 4,
                length_penalty: float = 0.6, max_len_ratio: float = 1.5, max_len_extra: int = 10
                ) -> list[list[int]]:
    """The best of `beam` hypotheses per sentence (see the module docstring); tokens without </s>."""
    check_decoding_options(beam, length_penalty, max_len_ratio, max_len_extra)
    B, K, dev = src.shape[0], beam, src.device
    memory, src_mask = model.encode(src)
    memory, src_mask = memory.repeat_interleave(K, 0), src_mask.repeat_interleave(K, 0)
    limits = _limits(src, pad_id, model, max_len_ratio, max_len_extra).repeat_interleave(K)
    cache = model.new_cache()
    # Only the first beam is live at the start, or K copies of the same hypothesis would fill it.
    scores = torch.full((B, K), float("-inf"), device=dev)
    scores[:, 0] = 0.0
    seqs = torch.full((B * K, 1), bos_id, dtype=torch.long, device=dev)
    done = torch.zeros(B * K, dtype=torch.bool, device=dev)
    lengths = torch.zeros(B * K, dtype=torch.long, device=dev)
    offsets = (torch.arange(B, device=dev) * K)[:, None]
    for step in range(int(limits.max())):
        logp = _step_logprobs(model, seqs[:, -1:], memory, src_mask, cache, step, limits, eos_id)
        # A finished hypothesis can only be extended by </s> at no cost: its score is frozen.
        frozen = torch.full_like(logp[0], float("-inf"))
        frozen[eos_id] = 0.0
        logp[done] = frozen
        V = logp.shape[-1]
        total = (scores.view(B * K, 1) + logp).view(B, K * V)
        scores, flat = total.topk(K, dim=1)
        rows = (offsets + flat // V).view(-1)
        tokens = (flat % V).view(-1)
        cache.reorder(rows)
        lengths = lengths[rows] + (~done[rows]).long()
        done = done[rows] | (tokens == eos_id)
        seqs = torch.cat([seqs[rows], tokens[:, None]], dim=1)
        if done.all():
            break
    norm = ((5.0 + lengths.float()) / 6.0) ** length_penalty
    best = (scores.view(-1) / norm).view(B, K).argmax(1)
    chosen = seqs[(offsets.view(-1) + best)][:, 1:].tolist()
    return [_strip(row, eos_id) for row in chosen]
