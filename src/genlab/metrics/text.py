"""Numbers for language models: perplexity, bits per character, and how much of a sample
was copied from the training text.

Novelty (`novelty_report`) compares generated text with the corpus after the same light
normalization of both (lowercase, every run of whitespace -> one space), because a word
model cannot reproduce case or line breaks and copying is copying regardless:

- longest_copy_chars: length of the longest substring of the sample that occurs verbatim
  in the corpus (binary search over the length; at each length, polynomial rolling hashes
  of all windows of the sample and of the corpus are compared with numpy, and candidate
  matches are confirmed with a real substring search, so hash collisions cannot inflate it);
- word_ngram_share: share of the sample's word n-grams (n=8 by default; words are runs of
  letters/digits, punctuation is dropped so that rows of "-----" do not count as copied
  prose) that occur in the corpus. This is the number to read for memorization: fluent but
  original text scores near 0, recitation near 1;
- char_ngram_share: the same for character n-grams; short character n-grams are mostly
  spelling, so this is high for any fluent model and tells little about copying alone.

A 2 MB corpus takes about a second.
"""
from __future__ import annotations

import math
import re

import numpy as np

_WS = re.compile(r"\s+")
_WORD = re.compile(r"[^\W_]+")
_BASE = np.uint64(0x9E3779B97F4A7C15)          # odd, so invertible modulo 2**64
_BASE_INV = np.uint64(pow(0x9E3779B97F4A7C15, -1, 2**64))


def perplexity(mean_nats: float) -> float:
    """exp(mean negative log-likelihood per token, in nats); inf when it would overflow."""
    return math.exp(mean_nats) if mean_nats < 700 else math.inf


def bits_per_char(total_nats: float, n_chars: float) -> float:
    """Total negative log-likelihood (nats) of a text / its number of characters, in bits.

    For character tokens this is mean loss / ln 2; for word or BPE tokens it makes models
    with different tokenizers comparable.
    """
    return total_nats / max(n_chars, 1) / math.log(2)


def normalize(text: str) -> str:
    return _WS.sub(" ", text.lower()).strip()


class _Hashes:
    """Rolling hashes of every window of an int sequence, modulo 2**64 (numpy wraps)."""

    def __init__(self, codes: np.ndarray):
        n = len(codes)
        with np.errstate(over="ignore"):
            pw = np.full(n + 1, _BASE, dtype=np.uint64)
            pw[0] = 1
            pw = np.cumprod(pw, dtype=np.uint64)             # BASE**i
            ipw = np.full(n + 1, _BASE_INV, dtype=np.uint64)
            ipw[0] = 1
            self.inv = np.cumprod(ipw, dtype=np.uint64)      # BASE**-i
            terms = (codes.astype(np.uint64) + np.uint64(1)) * pw[:n]
            self.prefix = np.concatenate([np.zeros(1, np.uint64), np.cumsum(terms, dtype=np.uint64)])
        self.n = n

    def windows(self, length: int) -> np.ndarray:
        """Hash of every window [i, i+length), comparable across positions and sequences."""
        if length > self.n or length <= 0:
            return np.zeros(0, dtype=np.uint64)
        with np.errstate(over="ignore"):
            return (self.prefix[length:] - self.prefix[: self.n - length + 1]) * self.inv[: self.n - length + 1]


def _member(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """values[i] in pool, elementwise (sort + binary search; much faster than numpy's isin here)."""
    if len(pool) == 0:
        return np.zeros(len(values), dtype=bool)
    pool = np.sort(pool)
    pos = np.minimum(np.searchsorted(pool, values), len(pool) - 1)
    return pool[pos] == values


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


def longest_copied_span(generated: str, corpus: str) -> tuple[int, str]:
    """(length, text) of the longest substring of `generated` found verbatim in `corpus`."""
    if not generated or not corpus:
        return 0, ""
    g, c = _Hashes(_codes(generated)), _Hashes(_codes(corpus))

    def found(length: int) -> int:
        """A start in generated of a length-`length` copy, or -1."""
        gh = g.windows(length)
        hits = np.flatnonzero(_member(gh, c.windows(length)))
        for i in hits[:64]:  # confirm: a collision must not count as a copy
            if generated[i:i + length] in corpus:
                return int(i)
        return -1

    lo, hi, best = 0, min(len(generated), len(corpus)), (0, 0)  # found(lo) holds; find the largest
    while lo < hi:
        mid = (lo + hi + 1) // 2
        i = found(mid)
        if i >= 0:
            lo, best = mid, (mid, i)
        else:
            hi = mid - 1
    length, start = best
    return length, generated[start:start + length]


def ngram_share(generated: list | np.ndarray, corpus: list | np.ndarray, n: int) -> float:
    """Share of the n-grams of `generated` that occur in `corpus`: sequences of hashable
    units (words), or integer arrays (character codes); nan when generated is shorter than n."""
    if len(generated) < n:
        return float("nan")
    if not isinstance(generated, np.ndarray):
        ids: dict = {}
        generated = np.fromiter((ids.setdefault(u, len(ids)) for u in generated), dtype=np.int64,
                                count=len(generated))
        corpus = np.fromiter((ids.setdefault(u, len(ids)) for u in corpus), dtype=np.int64, count=len(corpus))
    return float(_member(_Hashes(generated).windows(n), _Hashes(np.asarray(corpus)).windows(n)).mean())


def novelty_report(generated: str, corpus: str, n: int = 8) -> dict:
    """How much of `generated` is copied from `corpus` (see the module docstring)."""
    gen, ref = normalize(generated), normalize(corpus)
    length, span = longest_copied_span(gen, ref)
    return {
        "generated_chars": len(gen),
        "longest_copy_chars": length,
        "longest_copy": span,
        "n": n,
        "word_ngram_share": ngram_share(_WORD.findall(gen), _WORD.findall(ref), n),
        "char_ngram_share": ngram_share(_codes(gen), _codes(ref), n),
    }
