"""Autoregressive generation for any language model that follows genlab's forward contract:

    logits = model(idx)                                             # (B, T, vocab)
    logits, cache = model(idx, past_kv=cache, use_cache=True)       # with a key/value cache

(models/gpt.py follows it; a model may also accept `last_only=True` to skip the logits of
earlier positions.) The cache is the model's business: by default a tuple of (key, value)
pairs with the batch first; a model whose cache is laid out otherwise (a recurrent state,
see sampling/recurrent.py) says how to keep some rows of it with a `select_cache(cache, rows)`
method. A model with a `new_cache(batch, capacity)` method gets its cache from it, empty, for
the prompt's forward pass (GPT: buffers filled in place instead of a tuple copied at every
step). Decoding: greedy (temperature 0), temperature, top-k, top-p and a repetition penalty,
through sampling/logits.py.

Behaviour worth knowing:
- Sliding window. A model with a context limit (`model.config.block_size`) only ever sees
  the last `block_size` tokens: a longer prompt is cropped from the left, and when generation
  fills the window it slides. Learned absolute positions shift when the window slides, so the
  cache is recomputed from the new window; `slide` > 1 drops that many tokens at once, which
  trades a slightly shorter context for `slide` times fewer recomputations. The no-cache path
  uses the same windows, so both paths give the same tokens.
- Batches. Row i samples with its own generator seeded `seed + i`, and rows whose prompts have
  the same length run together (different lengths run as separate groups), so every row of a
  batch equals a single-prompt call with seed `seed + i`.
- Stopping. A row stops at `eos_id` (not included in the output), at the first occurrence of a
  stop string (the text is cut before it), or after `max_new_tokens`.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .logits import check_sampling_options, next_token, penalize_repetition

Decode = Callable[[Sequence[int]], str]


@dataclass
class Generation:
    """One generated continuation (prompt excluded)."""

    tokens: list[int]
    text: str | None = None        # decoded tokens, cut before a stop string (None without a decoder)
    finish_reason: str = "length"  # "length" | "eos" | "stop"


@dataclass
class _Settings:
    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    eos_id: int | None
    stop: tuple[str, ...]
    decode: Decode | None
    use_cache: bool
    block_size: int | None
    slide: int
    repetition_penalty: float


def check_generation_options(max_new_tokens: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                             stop: Sequence[str] = (), slide: int = 1, block_size: int | None = None,
                             repetition_penalty: float = 1.0) -> None:
    """Raise a ConfigError naming the first invalid option."""
    check_sampling_options(temperature, top_k, top_p, repetition_penalty)
    if max_new_tokens < 0:
        raise ConfigError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if any(not isinstance(s, str) or not s for s in stop):
        raise ConfigError(f"stop strings must be non-empty strings, got {list(stop)!r}")
    if slide < 1 or (block_size is not None and slide > block_size):
        raise ConfigError(f"slide must lie in [1, block_size], got {slide}")


def model_block_size(model: nn.Module) -> int | None:
    """The model's context limit, or None if it has none (e.g. a recurrent model)."""
    return getattr(getattr(model, "config", None), "block_size", None)


def _settings(model: nn.Module, max_new_tokens: int, temperature: float, top_k: int, top_p: float,
              eos_id: int | None, stop: Sequence[str] | str | None, decode: Decode | None, use_cache: bool,
              block_size: int | None, slide: int, repetition_penalty: float) -> _Settings:
    stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
    block = block_size if block_size is not None else model_block_size(model)
    check_generation_options(max_new_tokens, temperature, top_k, top_p, stop, slide, block, repetition_penalty)
    if stop and decode is None:
        raise ConfigError("stop strings need a tokenizer to decode with")
    return _Settings(max_new_tokens, temperature, top_k, top_p, eos_id, stop, decode, use_cache, block, slide,
                     repetition_penalty)


def _window_start(length: int, start: int, block: int | None, slide: int) -> int:
    """First token of the window the model sees when `length` tokens exist (window now at `start`)."""
    if block is None or length - start <= block:
        return start
    return length - block + slide - 1


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(7), "little")  # leaves torch's global RNG alone


def _accepts(model: nn.Module, arg: str) -> bool:
    try:
        return arg in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _run_group(model: nn.Module, prompts: list[list[int]], seeds: list[int | None], s: _Settings
               ) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Prompts of equal length, decoded together. Yields (alive row positions, next tokens) per step;
    a row leaves `alive` when the caller reports it finished through the generator's send()."""
    device = _model_device(model)
    last_only = {"last_only": True} if _accepts(model, "last_only") else {}
    gens = [None if seed is None else torch.Generator().manual_seed(seed) for seed in seeds]
    window = torch.tensor(prompts, dtype=torch.long, device=device)
    start = _window_start(window.shape[1], 0, s.block_size, s.slide)
    window = window[:, start:]
    alive = list(range(len(prompts)))

    # a model with `new_cache(batch, capacity)` gets its cache allocated once for the whole window
    capacity = window.shape[1] + s.max_new_tokens
    if s.block_size is not None:
        capacity = min(capacity, s.block_size)

    def forward_full(w: torch.Tensor):
        if s.use_cache:
            empty = model.new_cache(w.shape[0], capacity) if hasattr(model, "new_cache") else None
            logits, cache = model(w, past_kv=empty, use_cache=True, **last_only)
            return logits[:, -1], cache
        return model(w, **last_only)[:, -1], None

    logits, cache = forward_full(window)
    for _ in range(s.max_new_tokens):
        logits = penalize_repetition(logits, window, s.repetition_penalty)
        if s.temperature == 0:
            nxt = logits.argmax(-1)
        else:  # row by row, each with its own generator: a batch row equals a single-prompt call
            nxt = torch.cat([next_token(logits[i:i + 1], s.temperature, s.top_k, s.top_p, gens[alive[i]])
                             for i in range(len(alive))])
        finished = yield alive, nxt
        keep = [i for i, row in enumerate(alive) if row not in (finished or ())]
        if not keep:
            return
        if len(keep) < len(alive):  # drop finished rows from the batch and the cache
            idx = torch.tensor(keep, device=device)
            alive = [alive[i] for i in keep]
            nxt, window = nxt[idx], window[idx]
            if cache is not None:
                cache = (model.select_cache(cache, idx) if hasattr(model, "select_cache")
                         else tuple((k[idx], v[idx]) for k, v in cache))
        window = torch.cat([window, nxt[:, None]], dim=1)
        new_start = _window_start(window.shape[1], 0, s.block_size, s.slide)
        if new_start:  # the window slid: positions moved, so the cache is recomputed
            window = window[:, new_start:]
            logits, cache = forward_full(window)
        elif s.use_cache:
            out, cache = model(window[:, -1:], past_kv=cache, use_cache=True)
            logits = out[:, -1]
        else:
            logits, _ = forward_full(window)


class _RowState:
    def __init__(self, s: _Settings):
        self.s = s
        self.tokens: list[int] = []
        self.finish_reason = "length"
        self.stop_at: int | None = None   # text index of the stop string
        self._searched = 0                 # text before this index holds no stop string

    def add(self, token: int) -> bool:
        """Record a token; True when the row is finished."""
        s = self.s
        if s.eos_id is not None and token == s.eos_id:
            self.finish_reason = "eos"
            return True
        self.tokens.append(token)
        if s.stop:
            text = s.decode(self.tokens)
            hit = _find_stop(text, s.stop, self._searched)
            if hit is not None:
                self.stop_at, self.finish_reason = hit, "stop"
                return True
            self._searched = max(0, len(text) - max(map(len, s.stop)) + 1)
        return len(self.tokens) >= s.max_new_tokens

    def result(self) -> Generation:
        text = None
        if self.s.decode is not None:
            text = self.s.decode(self.tokens)
            if self.stop_at is not None:
                text = text[:self.stop_at]
        return Generation(self.tokens, text, self.finish_reason)


def _find_stop(text: str, stop: tuple[str, ...], start: int) -> int | None:
    hits = [i for i in (text.find(x, start) for x in stop) if i >= 0]
    return min(hits) if hits else None


def _prepare(prompts: Sequence[Sequence[int]], bos_id: int | None) -> list[list[int]]:
    out = []
    for p in prompts:
        p = [int(t) for t in p]
        if not p:
            if bos_id is None:
                raise ConfigError("empty prompt and the tokenizer has no begin/end-of-text token to start from")
            p = [bos_id]
        out.append(p)
    return out


@torch.inference_mode()  # as no_grad, and less bookkeeping per operation (a few % per token)
def generate(model: nn.Module, prompts: Sequence[Sequence[int]], max_new_tokens: int = 100, *,
             temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, eos_id: int | None = None,
             bos_id: int | None = None, stop: Sequence[str] | str | None = None, decode: Decode | None = None,
             seed: int | None = 0, use_cache: bool = True, block_size: int | None = None, slide: int = 1,
             repetition_penalty: float = 1.0) -> list[Generation]:
    """Continue each prompt (a list of token ids); one Generation per prompt, in order.

    An empty prompt starts from `bos_id` (default: `eos_id`, as GPT-2 does). seed=None draws
    from fresh entropy. The model should be in eval mode (the caller decides).
    """
    s = _settings(model, max_new_tokens, temperature, top_k, top_p, eos_id, stop, decode, use_cache,
                  block_size, slide, repetition_penalty)
    rows = _prepare(prompts, bos_id if bos_id is not None else eos_id)
    states = [_RowState(s) for _ in rows]
    if s.max_new_tokens == 0:
        return [st.result() for st in states]
    base = seed if seed is not None else _fresh_seed()
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(rows):
        # rows whose windows have the same length decode together (same positions, no padding)
        start = _window_start(len(p), 0, s.block_size, s.slide)
        groups.setdefault(len(p) - start, []).append(i)
    for members in groups.values():
        steps = _run_group(model, [rows[i] for i in members], [base + i for i in members], s)
        finished: list[int] | None = None
        while True:
            try:
                alive, nxt = steps.send(finished) if finished is not None else next(steps)
            except StopIteration:
                break
            finished = [pos for pos, tok in zip(alive, nxt.tolist()) if states[members[pos]].add(tok)]
    return [st.result() for st in states]


@torch.inference_mode()  # as no_grad, and less bookkeeping per operation (a few % per token)
def stream(model: nn.Module, prompt: Sequence[int], max_new_tokens: int = 100, *, temperature: float = 1.0,
           top_k: int = 0, top_p: float = 1.0, eos_id: int | None = None, bos_id: int | None = None,
           stop: Sequence[str] | str | None = None, decode: Decode | None = None, seed: int | None = 0,
           use_cache: bool = True, block_size: int | None = None, slide: int = 1,
           repetition_penalty: float = 1.0) -> Iterator[int | str]:
    """Continue one prompt, yielding as it goes: token ids, or text pieces when `decode` is given.

    Joined, the text pieces equal generate(...)[0].text. Text that could be the start of a stop
    string, or an incomplete UTF-8 character, is held back until it is known.
    """
    s = _settings(model, max_new_tokens, temperature, top_k, top_p, eos_id, stop, decode, use_cache,
                  block_size, slide, repetition_penalty)
    row = _prepare([prompt], bos_id if bos_id is not None else eos_id)[0]
    state = _RowState(s)
    if s.max_new_tokens == 0:
        return
    hold = max(map(len, s.stop), default=1) - 1
    emitted = 0
    steps = _run_group(model, [row], [seed if seed is not None else _fresh_seed()], s)
    finished: list[int] | None = None
    while True:
        try:
            _, nxt = steps.send(finished) if finished is not None else next(steps)
        except StopIteration:
            break
        tok = int(nxt[0])
        done = state.add(tok)
        finished = [0] if done else []
        if decode is None:
            if state.finish_reason != "eos":
                yield tok
        elif not done:
            text = decode(state.tokens)
            safe = len(text) - hold
            while safe > emitted and text[safe - 1] == "\ufffd":  # maybe a partial multi-byte character
                safe -= 1
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
        if done:
            break
    if decode is not None:
        text = state.result().text or ""
        if len(text) > emitted:
            yield text[emitted:]
