"""Tokenizers: char, word (the book's rules), byte-level BPE (trained), GPT-2 (from local files).

    tok = build_tokenizer("char", text)            # or "word", "bpe", "gpt2"
    ids = tok.encode("Hello"); tok.decode(ids)
    tok.save(run_dir); tok = load_tokenizer(run_dir)  # <dir>/tokenizer.json, JSON only
"""
from .base import KINDS, Tokenizer, build_tokenizer, load_tokenizer
from .bpe import BPETokenizer
from .char import CharTokenizer
from .gpt2 import GPT2Tokenizer, bytes_to_unicode
from .word import WordTokenizer, detokenize, split_words

__all__ = ["KINDS", "Tokenizer", "build_tokenizer", "load_tokenizer", "BPETokenizer", "CharTokenizer",
           "GPT2Tokenizer", "WordTokenizer", "bytes_to_unicode", "detokenize", "split_words"]
