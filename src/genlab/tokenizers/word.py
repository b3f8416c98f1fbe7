"""Word tokens, by the reference book's rules, with a detokenizer that reads like prose.

Encoding: lowercase; a word is a run of letters/digits; every other non-space character
(punctuation) is a token of its own; the vocabulary is the `vocab_size` most frequent
tokens (ties broken alphabetically) plus `<unk>` (id 0) for everything else. Unknown words
never crash: they become `<unk>` and are counted by `count_unknown`.

Decoding puts spaces back: none before , . ; : ! ? ) ] } % and closing quotes, none after
( [ { and opening quotes, none around hyphens, and "don ' t" becomes "don't". Sentence
starts and the pronoun "i" are capitalized (the text was lowercased on the way in).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable, Sequence

from ..errors import DataError
from .base import Tokenizer

UNK = "<unk>"
_TOKEN = re.compile(r"[^\W_]+|\S")
_NO_SPACE_BEFORE = set(",.;:!?)]}%")
_NO_SPACE_AFTER = set("([{")
_QUOTES = set('"_`')   # open/close alternately
_GLUE = set("-/")       # joins its neighbours: man-cook, and/or
_SUFFIXES = {"s", "t", "ll", "re", "ve", "d", "m"}
_SENTENCE_END = set(".!?")


def split_words(text: str) -> list[str]:
    """The book's word split: lowercase, punctuation as separate tokens."""
    return _TOKEN.findall(text.lower())


class WordTokenizer(Tokenizer):
    kind = "word"
    unk_id = 0

    def __init__(self, words: Sequence[str]):
        if UNK in words:
            raise ValueError(f"{UNK} is reserved")
        self.words = list(words)
        self.itos = [UNK] + self.words
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate words in vocabulary")
        self.vocab_size = len(self.itos)
        self.eos_id = None

    @classmethod
    def fit(cls, text: str, vocab_size: int = 2000, **opts: Any) -> "WordTokenizer":
        if opts:
            raise TypeError(f"word tokenizer takes no options: {', '.join(opts)}")
        counts = Counter(split_words(text))
        if not counts:
            raise DataError("cannot build a word vocabulary from text without words")
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if vocab_size > 0:
            ranked = ranked[: max(vocab_size - 1, 1)]  # one slot is <unk>
        return cls([w for w, _ in ranked])

    def encode(self, text: str) -> list[int]:
        get = self.stoi.get
        ids = [get(w, 0) for w in split_words(text)]
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return detokenize(self.itos[i] if 0 <= i < len(self.itos) else UNK for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"words": self.words}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WordTokenizer":
        words = d["words"]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("words must be a list of strings")
        return cls(words)


def detokenize(tokens: Iterable[str], capitalize: bool = True) -> str:
    """Join word tokens with prose spacing (see the module docstring)."""
    out: list[str] = []
    open_quotes: set[str] = set()
    glue_next = True          # no space before the next token
    sentence_start = True
    prev = ""
    for tok in tokens:
        space = not glue_next
        glue_next = False
        if tok in _QUOTES:
            if tok in open_quotes:       # closing quote: hug the previous word
                open_quotes.discard(tok)
                space = False
            else:                        # opening quote: hug the next word
                open_quotes.add(tok)
                glue_next = True
        elif tok in _NO_SPACE_BEFORE:
            space = False
        elif tok in _NO_SPACE_AFTER:
            glue_next = True
        elif tok in _GLUE:
            space, glue_next = False, True
        elif tok == "'":
            space = False
        elif prev == "'" and tok in _SUFFIXES and len(out) >= 2 and (out[-2][-1:].isalnum()
                                                                     or out[-2].endswith(UNK)):
            space = False                # don ' t -> don't
        word = tok
        if tok in _SENTENCE_END:
            sentence_start = True
        elif word[:1].isalnum() or tok == UNK:
            if capitalize and word[:1].isalpha() and (sentence_start or word == "i"):
                word = word[0].upper() + word[1:]
            sentence_start = False
        out.append((" " if space and out else "") + word)
        prev = tok
    return "".join(out)
