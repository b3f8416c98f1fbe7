"""An encoder-decoder Transformer (Vaswani et al., 2017) for translation, top to bottom.

    model = Seq2Seq(Seq2SeqConfig(src_vocab=8000, tgt_vocab=8000, pad_id=0))
    logits = model(src, tgt_in)                       # (B, T, tgt_vocab), teacher forcing
    memory, src_mask = model.encode(src)              # once per source batch, then token by token:
    cache = model.new_cache()
    logits = model.decode(tokens, memory, src_mask, cache)   # tokens (B, 1): one step with a KV cache

Masks are boolean and mean "may attend" (True) as F.scaled_dot_product_attention reads them:
the encoder and the cross-attention never look at source padding; the decoder's self-attention
is causal (position t sees positions <= t) and never looks at target padding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attend

ACTIVATIONS = ("relu", "gelu")
POSITIONS = ("sinusoidal", "learned")


@dataclass
class Seq2SeqConfig:
    src_vocab: int
    tgt_vocab: int
    pad_id: int = 0
    d_model: int = 256
    n_head: int = 8
    n_enc: int = 3                     # encoder layers
    n_dec: int = 3                     # decoder layers
    d_ff: int = 1024                   # hidden width of the position-wise feed-forward network
    dropout: float = 0.1
    activation: str = "relu"           # relu (the paper's) | gelu
    positions: str = "sinusoidal"      # sinusoidal (the paper's) | learned
    max_len: int = 256                 # longest sequence, in tokens, the positions cover
    norm_first: bool = True            # pre-LN (stable without warm-up tricks) or post-LN (the paper's)
    shared_embeddings: bool = False    # one embedding for source and target (needs a joint vocabulary)
    tie_output: bool = True            # the output layer reuses the target embedding matrix

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if self.activation not in ACTIVATIONS or self.positions not in POSITIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, positions one of {POSITIONS}")
        if self.shared_embeddings and self.src_vocab != self.tgt_vocab:
            raise ValueError("shared_embeddings needs src_vocab == tgt_vocab (a joint vocabulary)")


def padding_mask(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(B, S) tokens -> (B, 1, 1, S): True where the key is a real token."""
    return (tokens != pad_id)[:, None, None, :]


def causal_mask(size: int, device: torch.device | None = None) -> torch.Tensor:
    """(T, T): True on and below the diagonal, so position t attends to positions <= t."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def sinusoids(max_len: int, d_model: int) -> torch.Tensor:
    """The paper's fixed positions: sin on even dimensions, cos on odd, wavelengths 2pi..10000*2pi."""
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


class MultiHeadAttention(nn.Module):
    """Queries from x, keys and values from `context` (x itself for self-attention)."""

    def __init__(self, d_model: int, n_head: int, dropout: float):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, n_head, T, C / n_head)."""
        B, T, C = x.shape
        return x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None, mask: torch.Tensor | None,
                cache: dict[str, torch.Tensor] | None = None, static: bool = False) -> torch.Tensor:
        """`cache` (incremental decoding) holds keys/values: self-attention (static=False) appends
        this step's; cross-attention (static=True) computes the memory's once and reuses them."""
        q = self.heads(self.q(x))
        if cache is not None and static and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            src = x if context is None else context
            k, v = self.heads(self.k(src)), self.heads(self.v(src))
            if cache is not None:
                if not static and "k" in cache:
                    k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
                cache["k"], cache["v"] = k, v
        y = attend(q, k, v, mask, dropout_p=self.dropout if self.training else 0.0)
        B, _, T, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    """Position-wise: Linear -> activation -> Linear (the activation is what makes it non-linear)."""

    def __init__(self, d_model: int, d_ff: int, activation: str, dropout: float):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.act = nn.ReLU() if activation == "relu" else nn.GELU()
        self.down = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.drop(self.act(self.up(x))))


class Residual(nn.Module):
    """x + dropout(sublayer(x)) with LayerNorm before the sublayer (pre-LN) or after the sum (post-LN)."""

    def __init__(self, d_model: int, dropout: float, norm_first: bool):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor, sublayer) -> torch.Tensor:
        if self.norm_first:
            return x + self.drop(sublayer(self.norm(x)))
        return self.norm(x + self.drop(sublayer(x)))


class EncoderLayer(nn.Module):
    def __init__(self, c: Seq2SeqConfig):
        super().__init__()
        self.attn = MultiHeadAttention(c.d_model, c.n_head, c.dropout)
        self.ff = FeedForward(c.d_model, c.d_ff, c.activation, c.dropout)
        self.res1 = Residual(c.d_model, c.dropout, c.norm_first)
        self.res2 = Residual(c.d_model, c.dropout, c.norm_first)

    def forward(self, x: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        x = self.res1(x, lambda h: self.attn(h, None, src_mask))
        return self.res2(x, self.ff)


class DecoderLayer(nn.Module):
    def __init__(self, c: Seq2SeqConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(c.d_model, c.n_head, c.dropout)
        self.cross_attn = MultiHeadAttention(c.d_model, c.n_head, c.dropout)
        self.ff = FeedForward(c.d_model, c.d_ff, c.activation, c.dropout)
        self.res1 = Residual(c.d_model, c.dropout, c.norm_first)
        self.res2 = Residual(c.d_model, c.dropout, c.norm_first)
        self.res3 = Residual(c.d_model, c.dropout, c.norm_first)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, self_mask: torch.Tensor | None,
                src_mask: torch.Tensor, cache: dict[str, dict[str, torch.Tensor]] | None = None) -> torch.Tensor:
        own, cross = (None, None) if cache is None else (cache["self"], cache["cross"])
        x = self.res1(x, lambda h: self.self_attn(h, None, self_mask, own))
        x = self.res2(x, lambda h: self.cross_attn(h, memory, src_mask, cross, static=True))
        return self.res3(x, self.ff)


@dataclass
class DecoderCache:
    """Per-layer keys/values of the decoder for token-by-token decoding."""

    layers: list[dict[str, dict[str, torch.Tensor]]] = field(default_factory=list)
    length: int = 0  # target tokens already decoded (the next token's position)

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows `index` of the self-attention caches (beam search). Cross-attention keys are
        the same for every beam of one sentence and beams never move between sentences, so the
        static caches stay as they are."""
        for layer in self.layers:
            own = layer["self"]
            own["k"], own["v"] = own["k"].index_select(0, index), own["v"].index_select(0, index)


class Seq2Seq(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        c = self.config = config
        self.src_embed = nn.Embedding(c.src_vocab, c.d_model, padding_idx=c.pad_id)
        self.tgt_embed = self.src_embed if c.shared_embeddings else nn.Embedding(c.tgt_vocab, c.d_model,
                                                                                padding_idx=c.pad_id)
        if c.positions == "learned":
            self.pos = nn.Embedding(c.max_len, c.d_model)
        else:
            self.register_buffer("sinusoids", sinusoids(c.max_len, c.d_model), persistent=False)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(c) for _ in range(c.n_enc))
        self.decoder = nn.ModuleList(DecoderLayer(c) for _ in range(c.n_dec))
        # Pre-LN leaves the residual stream un-normalised: one final LayerNorm on each side.
        self.enc_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.dec_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.lm_head = nn.Linear(c.d_model, c.tgt_vocab, bias=False)
        self.apply(self._init)
        if c.tie_output:
            self.lm_head.weight = self.tgt_embed.weight

    def _init(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            # Scaled by sqrt(d_model) in embed(), so unit-variance positions and tokens mix evenly.
            nn.init.normal_(m.weight, std=self.config.d_model ** -0.5)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()

    def embed(self, table: nn.Embedding, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        T = tokens.shape[1]
        if start + T > self.config.max_len:
            raise ValueError(f"sequence of {start + T} tokens is longer than max_len={self.config.max_len}")
        pos = (self.pos.weight if self.config.positions == "learned" else self.sinusoids)[start:start + T]
        return self.drop(table(tokens) * math.sqrt(self.config.d_model) + pos)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) source tokens -> (memory (B, S, d_model), source mask (B, 1, 1, S))."""
        src_mask = padding_mask(src, self.config.pad_id)
        x = self.embed(self.src_embed, src)
        for layer in self.encoder:
            x = layer(x, src_mask)
        return self.enc_norm(x), src_mask

    def new_cache(self) -> DecoderCache:
        return DecoderCache([{"self": {}, "cross": {}} for _ in self.decoder])

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor,
               cache: DecoderCache | None = None) -> torch.Tensor:
        """Target tokens (B, T) -> logits (B, T, tgt_vocab). With a cache, `tgt` holds only the new
        tokens: they attend to the cached ones, so no look-ahead mask is needed for one token."""
        start = cache.length if cache is not None else 0
        T = tgt.shape[1]
        if cache is not None and T == 1:
            self_mask = None
        else:  # look-ahead mask; new tokens after cached ones see all of the cache
            self_mask = torch.cat([torch.ones(T, start, dtype=torch.bool, device=tgt.device),
                                   causal_mask(T, tgt.device)], dim=1)
            if cache is None:  # teacher forcing: padded target positions are never looked at either
                self_mask = self_mask & padding_mask(tgt, self.config.pad_id)
        x = self.embed(self.tgt_embed, tgt, start)
        for i, layer in enumerate(self.decoder):
            x = layer(x, memory, self_mask, src_mask, None if cache is None else cache.layers[i])
        if cache is not None:
            cache.length += T
        return self.lm_head(self.dec_norm(x))

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        memory, src_mask = self.encode(src)
        return self.decode(tgt, memory, src_mask)


def label_smoothed_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float, pad_id: int
                        ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Cross-entropy against (1 - smoothing) on the reference token plus smoothing spread evenly over
    the other non-padding tokens (Szegedy et al.; the paper uses 0.1). Padding targets are skipped.

    Returns (mean smoothed loss per target token, summed plain NLL, number of target tokens): the
    smoothed loss is what is trained; the NLL gives perplexity."""
    logp = F.log_softmax(logits.float(), dim=-1)
    V = logp.shape[-1]
    nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    others = -(logp.sum(-1) - logp[..., pad_id]) - nll   # every class except pad and the reference
    smooth = (1 - smoothing) * nll + smoothing * others / max(V - 2, 1)
    keep = target != pad_id
    n = int(keep.sum())
    return smooth[keep].sum() / max(n, 1), nll[keep].sum(), n
