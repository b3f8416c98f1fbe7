"""Text in, text out: the sampling options and an LMParts decoded into typed outputs.

    texts = complete(parts, SamplingOptions(prompt="The "), n=4, seed=0)   # outputs.Texts
    for piece in stream_text(parts, SamplingOptions(prompt="The ")): print(piece, end="")

Every language-model recipe and the server decode through these two functions. Neither
touches shared state (the tokenizer is only read, random draws come from per-row generators
seeded `seed + i`), so one loaded model may serve several threads at once.
"""
from __future__ import annotations

from typing import Iterator, Sequence

from ..outputs import Texts
from .generate import generate, stream
from .options import LMParts, SamplingOptions


class _Prompt:
    """A prompt's token ids and how to decode a continuation in its context."""

    def __init__(self, parts: LMParts, text: str):
        tok = parts.tokenizer
        self.ids = tok.encode(text) if text else []
        self.unknown = tok.count_unknown(self.ids)
        self.start = self.ids or list(parts.start_ids)
        self.prefix = tok.decode(self.ids)
        self._tok = tok

    def decode(self, ids: Sequence[int]) -> str:
        """Continuation text, decoded after the prompt (word tokens join differently at a start)."""
        return self._tok.decode(self.ids + list(ids))[len(self.prefix):]


def _settings(parts: LMParts, opts: SamplingOptions, prompt: _Prompt) -> dict:
    return dict(temperature=opts.temperature, top_k=opts.top_k, top_p=opts.top_p, eos_id=parts.eos_id,
                stop=opts.stop_strings(), decode=prompt.decode, use_cache=opts.use_cache,
                block_size=parts.block_size, repetition_penalty=opts.repetition_penalty)


def complete(parts: LMParts, opts: SamplingOptions, n: int = 1, seed: int | None = 0) -> Texts:
    """`n` continuations of opts.prompt (row i drawn with seed `seed + i`)."""
    opts.check_sampling()
    prompt = _Prompt(parts, opts.prompt)
    gens = generate(parts.model, [prompt.start] * n, opts.max_new_tokens, seed=seed, **_settings(parts, opts, prompt))
    completions = [g.text or "" for g in gens]
    return Texts(texts=[prompt.prefix + c for c in completions], completions=completions, prompt=prompt.prefix,
                 prompt_tokens=len(prompt.ids), completion_tokens=[len(g.tokens) for g in gens],
                 finish_reasons=[g.finish_reason for g in gens], unknown_prompt_tokens=prompt.unknown)


def stream_text(parts: LMParts, opts: SamplingOptions, seed: int | None = 0) -> Iterator[str]:
    """One continuation of opts.prompt as text pieces while it is decoded; joined, the pieces
    equal complete(parts, opts, n=1, seed=seed).completions[0]."""
    opts.check_sampling()
    prompt = _Prompt(parts, opts.prompt)
    yield from stream(parts.model, prompt.start, opts.max_new_tokens, seed=seed, **_settings(parts, opts, prompt))
