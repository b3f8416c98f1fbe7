"""The tokenizer interface, and saving/loading/building by kind.

Every tokenizer turns text into a list of ints and back, and saves itself as one JSON
file, `<dir>/tokenizer.json` = {"genlab_tokenizer": 1, "kind": ..., ...kind's fields}.
Nothing is pickled; loading checks the JSON and raises RunDirError when it is missing or
corrupt.
"""
from __future__ import annotations

import abc
import json
from pathlib import Path
from typing import Any, ClassVar, Sequence

from ..engine.io import write_text
from ..errors import ConfigError, RunDirError

FORMAT = 1
FILENAME = "tokenizer.json"
KINDS = ("char", "word", "bpe", "gpt2")


class Tokenizer(abc.ABC):
    kind: ClassVar[str] = ""
    vocab_size: int
    eos_id: int | None = None
    unk_id: int | None = None   # the id of pieces outside the vocabulary; None: every text encodes

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Text -> token ids (unknown pieces become unk_id). Pure: encoding changes no state,
        so one tokenizer can serve several threads."""

    def count_unknown(self, ids: Sequence[int]) -> int:
        """How many of `ids` stand for text outside the vocabulary."""
        return 0 if self.unk_id is None else sum(1 for i in ids if i == self.unk_id)

    @abc.abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Token ids -> text."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The kind's fields, JSON-serializable (save() adds kind and format)."""

    @classmethod
    @abc.abstractmethod
    def from_dict(cls, d: dict[str, Any]) -> "Tokenizer":
        """Inverse of to_dict (may raise KeyError/TypeError/ValueError on bad input)."""

    def save(self, directory: Path) -> None:
        """Write directory/tokenizer.json atomically."""
        payload = {"genlab_tokenizer": FORMAT, "kind": self.kind, **self.to_dict()}
        write_text(Path(directory) / FILENAME, json.dumps(payload, ensure_ascii=False))

    def fingerprint(self) -> str:
        """A hash of the tokenizer's content (token caches are keyed by it)."""
        import hashlib

        blob = json.dumps({"kind": self.kind, **self.to_dict()}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _classes() -> dict[str, type[Tokenizer]]:
    from .bpe import BPETokenizer
    from .char import CharTokenizer
    from .gpt2 import GPT2Tokenizer
    from .word import WordTokenizer

    return {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer, "gpt2": GPT2Tokenizer}


def load_tokenizer(directory: Path) -> Tokenizer:
    """Read what Tokenizer.save wrote into `directory`."""
    path = Path(directory) / FILENAME
    if not path.is_file():
        raise RunDirError(f"no tokenizer in {directory} (missing {FILENAME})")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunDirError(f"corrupt tokenizer file {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(d, dict) or d.get("genlab_tokenizer") != FORMAT or d.get("kind") not in KINDS:
        raise RunDirError(f"{path} is not a genlab tokenizer (or of an incompatible version)")
    try:
        return _classes()[d["kind"]].from_dict(d)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RunDirError(f"corrupt tokenizer file {path}: {type(e).__name__}: {e}") from None


def build_tokenizer(kind: str, text: str, vocab_size: int = 2000, **opts: Any) -> Tokenizer:
    """Fit a tokenizer of `kind` on `text`.

    char: every character of text (vocab_size is ignored). word: the `vocab_size` most
    frequent words (0 = all). bpe: byte-level BPE with `vocab_size` tokens (needs the
    `tokenizers` package). gpt2: not trained; pass vocab=PATH/vocab.json, merges=PATH/merges.txt
    (or directory=PATH holding both).
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown tokenizer '{kind}' (use one of: {', '.join(KINDS)})")
    cls = _classes()[kind]
    return cls.fit(text, vocab_size=vocab_size, **opts)  # type: ignore[attr-defined]
