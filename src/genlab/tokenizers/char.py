"""Character tokens: one id per distinct character of the training text.

Id 0 is `<unk>`, for characters the training text never had (a prompt may hold them);
Tokenizer.count_unknown counts them and they decode as U+FFFD.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import DataError
from .base import Tokenizer

UNK = "<unk>"


class CharTokenizer(Tokenizer):
    kind = "char"
    unk_id = 0

    def __init__(self, chars: Sequence[str]):
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("chars must be distinct single characters")
        self.chars = list(chars)
        self.stoi = {c: i + 1 for i, c in enumerate(self.chars)}
        self.itos = ["\ufffd"] + self.chars
        self.vocab_size = len(self.itos)
        self.eos_id = None

    @classmethod
    def fit(cls, text: str, vocab_size: int = 0, **opts: Any) -> "CharTokenizer":
        if opts:
            raise TypeError(f"char tokenizer takes no options: {', '.join(opts)}")
        if not text:
            raise DataError("cannot build a character vocabulary from empty text")
        return cls(sorted(set(text)))

    def encode(self, text: str) -> list[int]:
        get = self.stoi.get
        ids = [get(c, 0) for c in text]
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        itos = self.itos
        return "".join(itos[i] if 0 <= i < len(itos) else "\ufffd" for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"chars": "".join(self.chars)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CharTokenizer":
        return cls(list(d["chars"]))
