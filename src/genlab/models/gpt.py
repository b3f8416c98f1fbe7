"""A decoder-only Transformer language model (GPT-2 architecture), in one file.

    tokens -> token embedding + learned position embedding -> dropout
           -> n_layer x Block [x + attn(ln_1(x)); x + mlp(ln_2(x))]   (pre-LayerNorm)
           -> ln_f -> lm_head (optionally tied to the token embedding) -> logits

Module names follow GPT-2's (wte, wpe, h.N.ln_1, attn.c_attn, ...) so published GPT-2
weights map onto this model one to one (see genlab.importers.gpt2). Attention is
F.scaled_dot_product_attention (a fused kernel on every device; see attention.py).

The forward pass takes an optional key/value cache for fast generation:

    logits = model(idx)                                         # (B, T, vocab)
    logits, cache = model(idx, use_cache=True)                  # prefill
    logits, cache = model(next_idx, past_kv=cache, use_cache=True)  # one step more

A cache is a tuple with one (key, value) pair per layer, each (B, n_head, T_past, head_dim);
positions of new tokens start after the cached ones. Generation passes `KVBuffers` from
`model.new_cache(batch, capacity)` instead: buffers allocated once and filled in place, where a
tuple cache is copied into a longer one at every step (same numbers, less memory traffic).

Rows of different lengths can share one batch by left-padding (the server's batcher does):
`pad` (B,) says how many slots at the start of each row, cache included, are padding. Those
slots are never attended to, and a row's real tokens keep positions 0, 1, ... as if alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attend

KVCache = tuple[tuple[torch.Tensor, torch.Tensor], ...]


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    block_size: int = 1024      # longest context (number of learned positions)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True           # biases in Linear and LayerNorm layers (GPT-2 has them)
    tie_weights: bool = True    # lm_head shares the token embedding matrix (GPT-2 does)
    layer_norm_eps: float = 1e-5
    activation: str = "gelu_tanh"  # GPT-2's tanh-approximated GELU, or "gelu" (exact, erf; nanoGPT's)

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.activation not in ("gelu_tanh", "gelu"):
            raise ValueError(f"activation must be gelu_tanh or gelu, got {self.activation!r}")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd, self.dropout = cfg.n_head, cfg.n_embd, cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)   # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None, past_len: int | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """past: the cached (key, value), or with `past_len` one layer of KVBuffers whose first
        past_len positions are filled (the new keys and values are written after them)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if past_len is not None:
            end = past_len + T
            past[0][:, :, past_len:end] = k
            past[1][:, :, past_len:end] = v
            k, v = past[0][:, :, :end].to(q.dtype), past[1][:, :, :end].to(q.dtype)
        elif past is not None:
            k = torch.cat([past[0].to(k.dtype), k], dim=2)
            v = torch.cat([past[1].to(v.dtype), v], dim=2)
        t_all = k.shape[2]
        causal = mask is None
        if mask is None and t_all != T:
            causal = False
            if T > 1:  # new tokens see every cached token and the new ones up to themselves
                mask = torch.ones(T, t_all, dtype=torch.bool, device=x.device).tril(diagonal=t_all - T)
        y = attend(q, k, v, mask, causal, self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)
        # GPT-2's GELU is the tanh approximation ("gelu_new"): its weights need it. The exact (erf)
        # GELU is nanoGPT's choice, and 2.5x faster on CPU in PyTorch's kernels.
        self.approximate = "tanh" if cfg.activation == "gelu_tanh" else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None, past_len: int | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        a, kv = self.attn(self.ln_1(x), past, mask, past_len)
        x = x + a
        return x + self.mlp(self.ln_2(x)), kv


@dataclass
class KVBuffers:
    """Keys and values of every layer in buffers allocated once (`GPT.new_cache`) and filled in
    place by `model(idx, past_kv=buffers, use_cache=True)`, which returns this same object.
    Generation's cache: extended, never branched (extending it twice from one state would
    overwrite the first extension; tuple caches allow that)."""

    k: torch.Tensor   # (n_layer, B, n_head, capacity, head_dim)
    v: torch.Tensor
    length: int = 0   # positions filled


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of logits (B, T, vocab) against next tokens (B, T), in fp32 even under autocast."""
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction=reduction)


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 init: N(0, 0.02) weights, zero biases, and the two projections that write into the
        residual stream scaled by 1/sqrt(2 n_layer), so its variance does not grow with depth."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for block in self.h:
            nn.init.normal_(block.attn.c_proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.mlp.c_proj.weight, mean=0.0, std=residual_std)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters (a tied lm_head counted once); without position embeddings by default."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: torch.Tensor, past_kv: KVCache | None = None, use_cache: bool = False,
                last_only: bool = False, pad: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, KVCache]:
        """idx: (B, T) token ids -> logits (B, T, vocab), and the new cache when use_cache.

        last_only=True computes logits for the last position only (B, 1, vocab): generation
        needs no more, and the vocabulary projection is the largest matmul of a small model.
        pad: (B,) left-padding slots per row (see the module docstring), or None.
        """
        B, T = idx.shape
        buffers = isinstance(past_kv, KVBuffers)
        if buffers and pad is not None:
            raise ValueError("KVBuffers do not take pad (use a tuple cache)")
        if buffers and past_kv.length + T > past_kv.k.shape[3]:
            raise ValueError(f"{past_kv.length + T} positions exceed the KVBuffers' capacity {past_kv.k.shape[3]}")
        past_len = past_kv.length if buffers else past_kv[0][0].shape[2] if past_kv else 0
        longest = past_len + T - (int(pad.min()) if pad is not None else 0)
        if longest > self.config.block_size:
            raise ValueError(f"sequence of {longest} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(past_len, past_len + T, device=idx.device)
        mask = None
        if pad is not None:
            key = torch.arange(past_len + T, device=idx.device)
            # attend to real keys up to oneself; a padding slot attends to itself only, so no
            # row of the softmax is empty (an empty row would put NaN into the cache)
            mask = ((key[None, :] <= pos[:, None]) & (key[None, None, :] >= pad[:, None, None])) \
                | (key[None, :] == pos[:, None])
            mask = mask[:, None]                                   # (B, 1, T, T_all)
            pos = (pos[None, :] - pad[:, None]).clamp(min=0)       # (B, T) positions as if unpadded
        x = self.drop(self.wte(idx) + self.wpe(pos))
        new_kv = []
        for i, block in enumerate(self.h):
            if buffers:
                x, _ = block(x, (past_kv.k[i], past_kv.v[i]), mask, past_len)
            else:
                x, kv = block(x, past_kv[i] if past_kv else None, mask)
                new_kv.append(kv)
        if buffers:
            past_kv.length += T
        if last_only:
            x = x[:, -1:]
        logits = self.lm_head(self.ln_f(x))
        if not use_cache:
            return logits
        return logits, (past_kv if buffers else tuple(new_kv))

    def new_cache(self, batch: int, capacity: int) -> KVBuffers:
        """Empty KVBuffers for `batch` rows of up to `capacity` positions, on the model's device."""
        c, w = self.config, self.wte.weight
        shape = (c.n_layer, batch, c.n_head, capacity, c.n_embd // c.n_head)
        return KVBuffers(w.new_empty(shape), w.new_empty(shape))

    @staticmethod
    def select_cache(cache: KVBuffers | KVCache, rows: torch.Tensor) -> KVBuffers | KVCache:
        """Keep batch rows `rows` of a cache (KVBuffers or a tuple cache)."""
        if isinstance(cache, KVBuffers):
            return KVBuffers(cache.k[:, rows], cache.v[:, rows], cache.length)
        return tuple((k[rows], v[rows]) for k, v in cache)
