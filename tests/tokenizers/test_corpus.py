"""Corpora: the embedded default, memory-mapped token files, chunked encoding, batches."""
import numpy as np
import pytest
import torch

from genlab.data.corpus import DEFAULT_CORPUS_NAME, TokenCorpus, chunk_bounds, default_corpus, load_text_corpus
from genlab.errors import DataError
from genlab.tokenizers import build_tokenizer

TEXT = "".join(f"Line {i}: the quick brown fox   jumps over the lazy dog.\n\n  indented {i * 7}\n" for i in range(400))


def test_default_corpus_is_english_prose():
    text = load_text_corpus(None)
    assert text == default_corpus() and len(text) > 300_000 and "the" in text
    assert "pydoc_data" in DEFAULT_CORPUS_NAME


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_chunked_memmap_equals_whole_encoding(kind, tmp_path):
    tok = build_tokenizer(kind, TEXT, vocab_size=300)
    corpus = TokenCorpus.build(TEXT, tok, tmp_path, chunk_chars=500)  # many chunks
    split = int(len(TEXT) * 0.9)
    assert isinstance(corpus.train, np.memmap) and corpus.train.dtype == np.uint16
    assert corpus.train.tolist() == tok.encode(TEXT[:split])
    assert corpus.val.tolist() == tok.encode(TEXT[split:])
    assert corpus.meta["train_chars"] == split


def test_chunk_bounds_cover_text():
    bounds = list(chunk_bounds(TEXT, 10, len(TEXT) - 5, 300))
    assert bounds[0][0] == 10 and bounds[-1][1] == len(TEXT) - 5
    assert all(a < b for a, b in bounds) and all(b == a2 for (_, b), (a2, _) in zip(bounds, bounds[1:]))


def test_cache_reused_and_rebuilt(tmp_path):
    tok = build_tokenizer("char", TEXT)
    TokenCorpus.build(TEXT, tok, tmp_path)
    stamp = (tmp_path / "train.bin").stat().st_mtime_ns
    TokenCorpus.build(TEXT, tok, tmp_path)
    assert (tmp_path / "train.bin").stat().st_mtime_ns == stamp
    other = TokenCorpus.build(TEXT[::-1], tok, tmp_path)  # other text: rebuilt
    assert other.train.tolist() == tok.encode(TEXT[::-1][: int(len(TEXT) * 0.9)])
    (tmp_path / "val.bin").write_bytes(b"\x00")
    with pytest.raises(DataError):
        TokenCorpus(tmp_path)


def test_window_and_stream_batches(tmp_path):
    tok = build_tokenizer("char", TEXT)
    c = TokenCorpus.build(TEXT, tok, tmp_path)
    x, y = c.window_batch("train", torch.Generator().manual_seed(0), 32, 5)
    assert x.shape == y.shape == (5, 32) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    x, _ = c.window_batch("val", [0, 3], 8, 2)
    assert x[1].tolist() == c.val[3:11].tolist()
    length, windows = c.stream_layout("train", 16, 4)
    prev = None
    for i in range(windows + 1):
        x, y, reset = c.stream_batch("train", i, 16, 4)
        assert reset == (i % windows == 0)
        if prev is not None and not reset:  # each stream continues where it stopped
            assert torch.equal(prev[:, -1], x[:, 0])
        if i < windows:  # first pass: no offset, stream 1 starts at `length`
            assert x[1, 0].item() == c.train[length + i * 16]
        prev = y
    with pytest.raises(DataError):
        c.window_batch("val", torch.Generator(), len(c.val), 1)
    with pytest.raises(DataError):
        c.stream_layout("val", 100, 1000)


def test_empty_text_rejected(tmp_path):
    with pytest.raises(DataError):
        TokenCorpus.build("", build_tokenizer("char", "a"), tmp_path)


def test_invalid_utf8_warns(tmp_path, capsys):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"hello \xff\xfe world, a fine day\n" * 10)
    text = load_text_corpus(str(p))
    assert "\ufffd" in text
    err = capsys.readouterr().err
    assert "warning" in err and "replaced" in err


def _prepare(cache, tmp_path, calls, kind="word"):
    from genlab.data.corpus import prepare_corpus

    def fit(train_text):
        calls.append(len(train_text))
        return build_tokenizer(kind, train_text, vocab_size=300)
    return prepare_corpus(TEXT, 0.1, fit, {"kind": kind, "vocab": 300}, tmp_path / "fallback", cache=cache)


def test_user_cache_hit_equals_miss(tmp_path):
    calls = []
    tok, corpus = _prepare(tmp_path / "cache", tmp_path, calls)
    tok2, corpus2 = _prepare(tmp_path / "cache", tmp_path, calls)
    assert calls == [int(len(TEXT) * 0.9)]                 # fitted once, on the training part only
    assert tok2.fingerprint() == tok.fingerprint() and corpus2.directory == corpus.directory
    assert corpus2.train.tolist() == corpus.train.tolist() == tok.encode(TEXT[:int(len(TEXT) * 0.9)])
    assert corpus2.val.tolist() == corpus.val.tolist()
    assert not (tmp_path / "fallback").exists()


def test_corrupt_user_cache_is_rebuilt(tmp_path):
    calls = []
    tok, corpus = _prepare(tmp_path / "cache", tmp_path, calls)
    train, val = corpus.train.tolist(), corpus.val.tolist()
    tok_dir = next((tmp_path / "cache").glob("tok-*"))
    (tok_dir / "tokenizer.json").write_text('{"genlab_tokenizer": 1, "kind": "word", "vocab": ["x"]}')
    raw = bytearray((corpus.directory / "train.bin").read_bytes())
    raw[10] ^= 0xFF                                      # same size, one token changed
    (corpus.directory / "train.bin").write_bytes(bytes(raw))
    tok2, corpus2 = _prepare(tmp_path / "cache", tmp_path, calls)
    assert len(calls) == 2                               # the tokenizer was fitted again
    assert tok2.fingerprint() == tok.fingerprint()
    assert corpus2.train.tolist() == train and corpus2.val.tolist() == val
    (corpus.directory / "meta.json").write_bytes(b"\x80not json")
    (tok_dir / "key.json").unlink()
    tok3, corpus3 = _prepare(tmp_path / "cache", tmp_path, calls)
    assert len(calls) == 3 and corpus3.train.tolist() == train


def test_unwritable_user_cache_falls_back(tmp_path):
    (tmp_path / "cache").write_text("a file, not a folder")
    calls = []
    tok, corpus = _prepare(tmp_path / "cache", tmp_path, calls)
    assert corpus.directory == tmp_path / "fallback" and corpus.train.tolist() == tok.encode(TEXT[:int(len(TEXT) * 0.9)])


def test_user_cache_keeps_the_newest_entries(tmp_path, monkeypatch):
    import genlab.data.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "CACHE_ENTRIES", 2)
    tok = build_tokenizer("char", TEXT)
    for i in range(4):
        corpus_module.prepare_corpus(TEXT + str(i), 0.1, None, None, tmp_path / "fb", tokenizer=tok,
                                     cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("tokens-*"))) == 2
