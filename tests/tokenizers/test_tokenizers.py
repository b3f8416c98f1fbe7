"""Tokenizers: round-trips, word detokenization, unknowns, save/load, GPT-2 against Hugging Face."""
import json
from pathlib import Path

import pytest

from genlab.errors import ConfigError, RunDirError
from genlab.tokenizers import (CharTokenizer, GPT2Tokenizer, WordTokenizer, build_tokenizer, bytes_to_unicode,
                               detokenize, load_tokenizer)

TEXT = ("It was the best of times, it was the worst of times; it was the age of wisdom.\n"
        "\"Don't go,\" she said. (He went anyway!) Was it 1859? Yes: man-cook & co.\n") * 20
VARIED = ["Hello world", "  multiple   spaces\n\n\tTabs \n", "I'm we'll they've you'd it's",
          "Ünïcödé 日本語 😀 emoji", "x = 12345 + 3.14e-2", "trailing  ", "", "\n", "a\r\nb"]


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_lossless_round_trip(kind, tmp_path):
    tok = build_tokenizer(kind, TEXT, vocab_size=300)
    for s in [TEXT[:200], "was the worst", "Don't (go)!"]:
        assert tok.decode(tok.encode(s)) == s
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
    assert again.encode(TEXT) == tok.encode(TEXT)


def test_char_unknowns_are_counted():
    tok = build_tokenizer("char", "abc")
    assert tok.vocab_size == 4 and tok.eos_id is None
    ids = tok.encode("abzzc")
    assert ids == [1, 2, 0, 0, 3] and tok.count_unknown(ids) == 2
    assert tok.count_unknown(tok.encode("cab")) == 0


def test_word_rules_and_unknowns():
    tok = build_tokenizer("word", TEXT, vocab_size=10)
    assert isinstance(tok, WordTokenizer) and tok.vocab_size == 10
    ids = tok.encode("It was the ZEBRA of times, xyzzy.")
    assert tok.count_unknown(ids) == 2 and ids.count(0) == 2
    assert tok.decode(ids).startswith("It was the <unk> of")
    full = build_tokenizer("word", TEXT, vocab_size=0)
    s = "it was the age of wisdom, it was the worst of times."
    assert full.encode(s.upper()) == full.encode(s)  # lowercased
    assert full.decode(full.encode(s)) == "It was the age of wisdom, it was the worst of times."
    # ids survive decode -> encode even though spacing is rebuilt
    ids = full.encode(TEXT[:300])
    assert full.encode(full.decode(ids)) == ids


def test_detokenizer_spacing():
    toks = ['"', "don", "'", "t", "go", ",", '"', "she", "said", ".", "(", "he", "went", "!", ")",
            "a", "man", "-", "cook", ";", "i", "think", ":", "yes", "?", "no", "."]
    assert detokenize(toks) == "\"Don't go,\" she said. (He went!) A man-cook; I think: yes? No."
    assert detokenize(["hello", "world"], capitalize=False) == "hello world"


def test_save_load_errors(tmp_path):
    with pytest.raises(RunDirError):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(RunDirError):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"genlab_tokenizer": 1, "kind": "word", "words": 3}))
    with pytest.raises(RunDirError):
        load_tokenizer(tmp_path)
    with pytest.raises(ConfigError):
        build_tokenizer("sentencepiece", TEXT)


def test_bytes_to_unicode_is_gpt2s_table():
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert all(not c.isspace() and c.isprintable() for c in table.values())


@pytest.fixture(scope="module")
def gpt2_files(tmp_path_factory) -> Path:
    """A tiny GPT-2-format vocab.json/merges.txt, trained here with Hugging Face tokenizers."""
    hf = pytest.importorskip("tokenizers")
    d = tmp_path_factory.mktemp("gpt2")
    tk = hf.ByteLevelBPETokenizer(add_prefix_space=False)
    corpus = [TEXT, " ".join(VARIED) * 5, "numbers 0123456789 and more numbers 42 1000000"]
    tk.train_from_iterator(corpus, vocab_size=400, min_frequency=2, special_tokens=["<|endoftext|>"],
                           show_progress=False)
    tk.save_model(str(d))
    return d


def test_gpt2_matches_hugging_face(gpt2_files):
    hf = pytest.importorskip("tokenizers")
    ours = build_tokenizer("gpt2", "", directory=gpt2_files)
    ref = hf.ByteLevelBPETokenizer(str(gpt2_files / "vocab.json"), str(gpt2_files / "merges.txt"),
                                   add_prefix_space=False)
    assert isinstance(ours, GPT2Tokenizer) and ours.eos_id == 0
    for s in VARIED + [TEXT[:500]]:
        ids = ours.encode(s)
        assert ids == ref.encode(s).ids, s
        assert ours.decode(ids) == s


def test_gpt2_eos_and_save(gpt2_files, tmp_path):
    tok = GPT2Tokenizer.from_files(gpt2_files / "vocab.json", gpt2_files / "merges.txt")
    ids = tok.encode("one<|endoftext|>two")
    assert ids.count(tok.eos_id) == 1
    assert tok.decode(ids) == "one<|endoftext|>two"
    tok.save(tmp_path)
    assert load_tokenizer(tmp_path).encode(TEXT) == tok.encode(TEXT)
