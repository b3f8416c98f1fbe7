"""Byte-level BPE trained on the user's text with Hugging Face `tokenizers`.

Byte-level means every string is encodable (no unknowns). `<|endoftext|>` is the
end-of-text token (id 0). The trained tokenizer is kept in Hugging Face's own JSON
format, nested inside genlab's tokenizer.json under "hf".
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from ..errors import ConfigError, DataError
from .base import Tokenizer

EOS = "<|endoftext|>"


def _hf():
    try:
        import tokenizers
    except ImportError:
        raise ConfigError("the bpe tokenizer needs the tokenizers package: pip install 'genlab[text]'") from None
    return tokenizers


class BPETokenizer(Tokenizer):
    kind = "bpe"

    def __init__(self, hf_tokenizer: Any):
        self.hf = hf_tokenizer
        self.vocab_size = self.hf.get_vocab_size()
        self.eos_id = self.hf.token_to_id(EOS)

    @classmethod
    def fit(cls, text: str, vocab_size: int = 2000, min_frequency: int = 2, **opts: Any) -> "BPETokenizer":
        if opts:
            raise TypeError(f"bpe tokenizer options: vocab_size, min_frequency (got {', '.join(opts)})")
        tk = _hf()
        if not text:
            raise DataError("cannot train a BPE tokenizer on empty text")
        if vocab_size < 257:
            raise ConfigError(f"bpe vocab_size must be >= 257 (256 bytes + {EOS}), got {vocab_size}")
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                         special_tokens=[EOS], show_progress=False,
                                         initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
        # Train on ~1 MB pieces so a large corpus is not one giant Python string list item.
        step = 1 << 20
        tok.train_from_iterator((text[i:i + step] for i in range(0, len(text), step)), trainer=trainer)
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=False)

    def to_dict(self) -> dict[str, Any]:
        return {"hf": json.loads(self.hf.to_str())}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BPETokenizer":
        tk = _hf()
        try:
            return cls(tk.Tokenizer.from_str(json.dumps(d["hf"])))
        except Exception as e:  # the Rust side raises plain Exception on malformed JSON
            raise ValueError(f"invalid Hugging Face tokenizer JSON: {str(e).splitlines()[0]}") from None
