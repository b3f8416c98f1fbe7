"""GPT-2's byte-level BPE, from a local vocab.json + merges.txt (no network).

How GPT-2 tokenizes (Radford et al. 2019, and the released encoder):
  1. split the text into pieces with a regex (contractions, letter runs, number runs,
     punctuation runs, whitespace), each optionally with one leading space;
  2. map each piece's UTF-8 bytes to printable unicode characters (bytes_to_unicode), so
     every byte string is a string over a 256-symbol alphabet;
  3. apply the learned merges, lowest rank first, until none applies; look the resulting
     symbols up in vocab.json.
`<|endoftext|>` in the input is the end-of-text token itself, not its 13 characters.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, DataError
from .base import Tokenizer

EOS = "<|endoftext|>"

try:
    import regex as _regex

    PRETOKENIZE = _regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
except ImportError:  # approximation: \d is only decimal digits, letters are [^\W\d_]
    PRETOKENIZE = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map.

    Printable Latin-1 bytes map to themselves; the other 68 (control chars, space, ...)
    map to chr(256 + k) in byte order, so no byte becomes whitespace or a control char.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class GPT2Tokenizer(Tokenizer):
    kind = "gpt2"

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]]):
        if not isinstance(vocab, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in vocab.items()):
            raise ValueError("vocab must map strings to ints")
        if not vocab or min(vocab.values()) < 0 or len(set(vocab.values())) != len(vocab):
            raise ValueError("vocab must give each token its own non-negative id")
        self.vocab = dict(vocab)
        self.merges = [tuple(m) for m in merges]
        if any(len(m) != 2 or not all(isinstance(s, str) for s in m) for m in self.merges):
            raise ValueError("each merge must be a pair of strings")
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.inverse = {v: k for k, v in self.vocab.items()}
        self.vocab_size = max(self.vocab.values()) + 1
        self.eos_id = self.vocab.get(EOS)
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_files(cls, vocab: str | Path, merges: str | Path) -> "GPT2Tokenizer":
        """Read GPT-2's vocab.json and merges.txt (the first line of merges.txt is a version header)."""
        try:
            v = json.loads(Path(vocab).read_text(encoding="utf-8"))
            lines = Path(merges).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read GPT-2 tokenizer files: {str(e).splitlines()[0]}") from None
        pairs = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
        try:
            return cls(v, pairs)  # type: ignore[arg-type]
        except ValueError as e:
            raise DataError(f"invalid GPT-2 tokenizer files ({vocab}, {merges}): {e}") from None

    @classmethod
    def fit(cls, text: str, vocab_size: int = 0, vocab: str | Path | None = None, merges: str | Path | None = None,
            directory: str | Path | None = None, **opts: Any) -> "GPT2Tokenizer":
        """GPT-2's tokenizer is not trained: this loads the files (text is ignored)."""
        if opts:
            raise TypeError(f"gpt2 tokenizer options: vocab, merges, directory (got {', '.join(opts)})")
        if directory is not None:
            vocab, merges = Path(directory) / "vocab.json", Path(directory) / "merges.txt"
        if vocab is None or merges is None:
            raise ConfigError("the gpt2 tokenizer needs local GPT-2 files: vocab.json and merges.txt")
        return cls.from_files(vocab, merges)

    # -- BPE ---------------------------------------------------------------------------
    def _bpe(self, piece: str) -> list[int]:
        """Token ids of one pre-tokenized piece (already mapped to byte characters)."""
        hit = self._cache.get(piece)
        if hit is not None:
            return hit
        word = list(piece)
        ranks = self.ranks
        while len(word) > 1:
            # the adjacent pair with the lowest merge rank
            best, best_rank = None, None
            for pair in zip(word, word[1:]):
                r = ranks.get(pair)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = pair, r
            if best is None:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == best[0] and word[i + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        try:
            ids = [self.vocab[w] for w in word]
        except KeyError as e:
            raise DataError(f"GPT-2 vocabulary lacks the symbol {e.args[0]!r} (vocab.json and merges.txt "
                            "do not belong together)") from None
        if len(self._cache) < 100_000:
            self._cache[piece] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        parts = text.split(EOS) if self.eos_id is not None else [text]
        enc = self.byte_encoder
        for k, part in enumerate(parts):
            if k:
                ids.append(self.eos_id)  # type: ignore[arg-type]
            for piece in PRETOKENIZE.findall(part):
                ids.extend(self._bpe("".join(enc[b] for b in piece.encode("utf-8"))))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        # Special tokens (<|endoftext|>) are not byte symbols: emit them verbatim.
        out, buf = [], bytearray()
        for i in ids:
            tok = self.inverse.get(int(i), "")
            if tok == EOS:
                out.append(buf.decode("utf-8", errors="replace"))
                out.append(EOS)
                buf = bytearray()
            else:
                buf.extend(self.byte_decoder[c] for c in tok if c in self.byte_decoder)
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    # -- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab, "merges": [list(m) for m in self.merges]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GPT2Tokenizer":
        return cls(d["vocab"], [tuple(m) for m in d["merges"]])
