"""Text corpora for language models: the embedded default, and token files on disk.

    text = load_text_corpus(path_or_None)          # the user's file/folder, or the default
    corpus = TokenCorpus.build(text, tokenizer, run_dir / "data")
    x, y = corpus.window_batch("train", generator, block_size=256, batch_size=32)   # GPT
    x, y, reset = corpus.stream_batch("train", index, block_size=100, n_streams=32)  # LSTM

The text is tokenized once, in ~1 MB chunks cut at safe places, into `train.bin` and
`val.bin` (np.uint16 when the vocabulary fits, else np.uint32) plus `meta.json`; the
files are memory-mapped, so even a multi-GB corpus never lives in RAM as a token list.
The split is fixed: the first 90% of the characters train, the last 10% validate (like
nanoGPT's shakespeare_char). A cache whose source hash and tokenizer match is reused.

Language-model recipes keep these caches in the user cache, so a second run on the same text
starts training at once (`prepare_corpus`):

    $GENLAB_CACHE/corpus/   (default ~/.cache/genlab/corpus; delete it to clear the cache)
        tok-<key>/tokenizer.json + key.json   a fitted tokenizer, keyed by the text's sha256,
                                              the split and the tokenizer settings
        tokens-<key>/train.bin val.bin meta.json   the token files, keyed by the text's sha256,
                                              the split and the tokenizer's fingerprint

Nothing there is trusted blindly or unpickled: the tokenizer is JSON and must reproduce the
fingerprint recorded beside it, the token files must have the recorded sizes and sha256; anything
else is rebuilt. The CACHE_ENTRIES most recently used entries of each kind are kept.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..engine.io import atomic_write, write_text
from ..errors import DataError, GenlabError
from ..tokenizers.base import Tokenizer, load_tokenizer
from .download import cache_root
from .text import read_text

DEFAULT_CORPUS_NAME = "Python's bundled documentation topics (pydoc_data)"
FORMAT = 2                 # 2: meta.json records each token file's sha256
CACHE_ENTRIES = 16         # user-cache entries kept per kind (tokenizers, token files), newest first
CHUNK_CHARS = 1 << 20
SPLITS = ("train", "val")

# Cut points where no tokenizer of genlab.tokenizers joins the two sides into one token:
# after a lone newline between two non-spaces (GPT-2's regex makes that "\n" a piece of its
# own, also at the end of a chunk), else before a single space between two non-spaces.
_LINE_CUT = re.compile(r"(?<=\S)\n(?=\S)")
_SPACE_CUT = re.compile(r"(?<=\S)(?= \S)")


def default_corpus() -> str:
    """CPython's documentation topics (shipped with Python): ~450-700 KB of English prose and code."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data
        raise DataError("the embedded corpus (pydoc_data) is missing from this Python; pass --data FILE") from None
    return "".join(topics[k] for k in sorted(topics))


def load_text_corpus(path: str | Path | None) -> str:
    """The text of a file or folder of .txt files; the embedded default when path is empty.

    Invalid UTF-8 is replaced (U+FFFD) and the count reported as a warning on stderr.
    """
    if not path:
        return default_corpus()
    data = read_text(path)
    if data.replaced:
        print(f"genlab: warning: {path}: {data.replaced} invalid UTF-8 sequence(s) replaced by U+FFFD",
              file=sys.stderr)
    return data.text


def chunk_bounds(text: str, start: int = 0, stop: int | None = None,
                 chunk_chars: int = CHUNK_CHARS) -> Iterator[tuple[int, int]]:
    """(a, b) pieces of text[start:stop], each about chunk_chars long, cut at safe places
    (see _LINE_CUT), so encoding piece by piece gives the same ids as encoding the whole."""
    stop = len(text) if stop is None else stop
    a = start
    while a < stop:
        target = a + chunk_chars
        if target >= stop:
            yield a, stop
            return
        m = _LINE_CUT.search(text, target, min(stop, target + chunk_chars))
        if m is None:
            m = _SPACE_CUT.search(text, target, min(stop, target + chunk_chars))
        b = m.end() if m is not None and m.re is _LINE_CUT else (m.start() if m is not None else target)
        b = max(b, a + 1)
        yield a, b
        a = b


def _sha256_text(text: str) -> str:
    h = hashlib.sha256()
    for i in range(0, len(text), CHUNK_CHARS):
        h.update(text[i:i + CHUNK_CHARS].encode("utf-8", errors="surrogatepass"))
    return h.hexdigest()


def _sha256_array(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a)).hexdigest()   # a memmap is hashed in place


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.uint32)


class TokenCorpus:
    """Memory-mapped train/val token files of one text and one tokenizer."""

    def __init__(self, directory: str | Path):
        """Open a corpus that build() wrote to `directory`."""
        self.directory = Path(directory)
        try:
            self.meta = json.loads((self.directory / "meta.json").read_text(encoding="utf-8"))
            self.dtype = np.dtype(self.meta["dtype"])
            self._splits = {s: self._open(s, int(self.meta[f"{s}_tokens"])) for s in SPLITS}
        except (OSError, KeyError, TypeError, ValueError) as e:
            raise DataError(f"token cache in {self.directory} is missing or corrupt: {e}") from None

    def _open(self, split: str, n: int) -> np.ndarray:
        path = self.directory / f"{split}.bin"
        if path.stat().st_size != n * self.dtype.itemsize:
            raise ValueError(f"{path.name} has {path.stat().st_size} bytes, expected {n * self.dtype.itemsize}")
        if n == 0:  # np.memmap refuses empty files
            return np.zeros(0, dtype=self.dtype)
        return np.memmap(path, dtype=self.dtype, mode="r", shape=(n,))

    def verified(self) -> bool:
        """True when both token files still hold the bytes build() wrote (their recorded sha256)."""
        return all(self.meta.get(f"{s}_sha256") == _sha256_array(self._splits[s]) for s in SPLITS)

    @classmethod
    def build(cls, text: str, tokenizer, directory: str | Path, val_fraction: float = 0.1,
              chunk_chars: int = CHUNK_CHARS, source_sha256: str | None = None) -> "TokenCorpus":
        """Tokenize `text` into directory/{train,val}.bin (+ meta.json), or reuse a matching cache
        whose files are intact. `source_sha256`: the text's hash when the caller has it already."""
        directory = Path(directory)
        if not 0 < val_fraction < 1:
            raise DataError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        if not text:
            raise DataError("the corpus is empty")
        source = source_sha256 or _sha256_text(text)
        key = {"format": FORMAT, "source_sha256": source, "tokenizer": tokenizer.fingerprint(),
               "val_fraction": val_fraction}
        meta_path = directory / "meta.json"
        if meta_path.is_file():
            try:
                old = json.loads(meta_path.read_text(encoding="utf-8"))
                if isinstance(old, dict) and all(old.get(k) == v for k, v in key.items()):
                    corpus = cls(directory)
                    if corpus.verified():
                        return corpus
            except (OSError, ValueError, DataError):
                pass  # rebuild
        dtype = token_dtype(tokenizer.vocab_size)
        split_at = int(len(text) * (1 - val_fraction))
        meta: dict = {**key, "dtype": dtype.name, "kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
                      "unknown": 0}
        for split, (a, b) in (("train", (0, split_at)), ("val", (split_at, len(text)))):
            n, digest = 0, hashlib.sha256()
            with atomic_write(directory / f"{split}.bin", "wb") as f:
                for lo, hi in chunk_bounds(text, a, b, chunk_chars):
                    ids = tokenizer.encode(text[lo:hi])
                    meta["unknown"] += tokenizer.count_unknown(ids)
                    arr = np.asarray(ids, dtype=np.int64)
                    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(dtype).max):
                        raise DataError(f"token id out of range for {dtype.name}")
                    data = arr.astype(dtype).tobytes()
                    f.write(data)
                    digest.update(data)
                    n += arr.size
            meta[f"{split}_tokens"], meta[f"{split}_chars"] = n, b - a
            meta[f"{split}_sha256"] = digest.hexdigest()
        write_text(meta_path, json.dumps(meta, indent=1))  # last: its presence marks a complete cache
        return cls(directory)

    # -- accessors ------------------------------------------------------------------------
    @property
    def train(self) -> np.ndarray:
        return self._splits["train"]

    @property
    def val(self) -> np.ndarray:
        return self._splits["val"]

    def split(self, name: str) -> np.ndarray:
        if name not in self._splits:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self._splits[name]

    def chars_per_token(self, split: str = "train") -> float:
        n = int(self.meta[f"{split}_tokens"])
        return int(self.meta[f"{split}_chars"]) / max(n, 1)

    def _rows(self, data: np.ndarray, starts: np.ndarray, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.stack([np.asarray(data[s:s + block_size + 1], dtype=np.int64) for s in starts])
        t = torch.from_numpy(rows)
        return t[:, :-1].contiguous(), t[:, 1:].contiguous()

    def window_batch(self, split: str, indices_or_generator: torch.Generator | torch.Tensor | np.ndarray | list[int],
                     block_size: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) LongTensors (batch, block_size): windows starting at the given positions, or at
        batch_size random positions drawn from the generator; y is x shifted by one token."""
        data = self.split(split)
        n_starts = len(data) - block_size
        if n_starts < 1:
            raise DataError(f"the {split} split has {len(data)} tokens, fewer than block_size + 1 = "
                            f"{block_size + 1} (use a smaller block_size or a larger corpus)")
        if isinstance(indices_or_generator, torch.Generator):
            starts = torch.randint(n_starts, (batch_size,), generator=indices_or_generator).numpy()
        else:
            starts = np.asarray(indices_or_generator, dtype=np.int64).reshape(-1)
            if starts.size and (starts.min() < 0 or starts.max() >= n_starts):
                raise IndexError(f"window start out of range [0, {n_starts})")
        return self._rows(data, starts, block_size)

    # -- consecutive streams (truncated BPTT) ----------------------------------------------------
    def stream_layout(self, split: str, block_size: int, n_streams: int) -> tuple[int, int]:
        """(stream_length, windows_per_stream) of `split` cut into n_streams contiguous regions."""
        usable = len(self.split(split)) - block_size  # room for the targets and a per-epoch offset
        length = usable // n_streams if usable > 0 else 0
        windows = length // block_size
        if windows < 1:
            raise DataError(f"the {split} split has {len(self.split(split))} tokens, too few for {n_streams} "
                            f"streams of windows of {block_size} (lower batch_size or seq_len, or use more text)")
        return length, windows

    def stream_batch(self, split: str, index: int, block_size: int, n_streams: int,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Batch `index` of `n_streams` parallel streams: row s reads stream s, which owns the
        s-th contiguous region of the split; batch i+1 continues each stream where batch i ended.

        Returns (x, y, reset): reset is True on the first window of a pass, when a carried
        hidden state must start from zero. Each pass (epoch) shifts all windows by an offset
        in [0, block_size) so the cut points differ between epochs. A pure function of index.
        """
        length, windows = self.stream_layout(split, block_size, n_streams)
        epoch, w = divmod(index, windows)
        offset = 0
        if epoch:
            digest = hashlib.sha256(f"stream-offset/{seed}/{epoch}".encode()).digest()
            offset = int.from_bytes(digest[:8], "little") % block_size
        starts = offset + np.arange(n_streams, dtype=np.int64) * length + w * block_size
        x, y = self._rows(self.split(split), starts, block_size)
        return x, y, w == 0


# -- the user cache ------------------------------------------------------------------------------
def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def _touch_and_prune(entry: Path) -> None:
    """Mark `entry` as just used; keep the CACHE_ENTRIES most recently used entries of its kind."""
    kind = entry.name.split("-", 1)[0]
    try:
        os.utime(entry)
        siblings = sorted((p for p in entry.parent.glob(f"{kind}-*") if p.is_dir()),
                          key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in siblings[CACHE_ENTRIES:]:
        shutil.rmtree(old, ignore_errors=True)


def _cached_tokenizer(directory: Path, fit: Callable[[], Tokenizer]) -> Tokenizer:
    """The tokenizer saved in `directory` when it is intact (JSON that reproduces the recorded
    fingerprint), else fit() saved there."""
    try:
        tokenizer = load_tokenizer(directory)
        recorded = json.loads((directory / "key.json").read_text(encoding="utf-8"))["fingerprint"]
        if tokenizer.fingerprint() == recorded:
            return tokenizer
    except (GenlabError, OSError, ValueError, KeyError, TypeError):
        pass  # missing or corrupt: fit again
    tokenizer = fit()
    tokenizer.save(directory)
    write_text(directory / "key.json", json.dumps({"fingerprint": tokenizer.fingerprint()}))  # last: complete
    return tokenizer


def prepare_corpus(text: str, val_fraction: float, fit: Callable[[str], Tokenizer] | None,
                   fit_settings: dict[str, Any] | None, fallback: Path, tokenizer: Tokenizer | None = None,
                   cache: Path | None = None) -> tuple[Tokenizer, "TokenCorpus"]:
    """(tokenizer, TokenCorpus) of `text`, through the user cache (see the module docstring).

    tokenizer: a given one (a saved run's); else fit(train_text), reused from the cache when
    `fit_settings` (everything besides the text that decides the fit) is given. cache: the cache
    folder (default $GENLAB_CACHE/corpus); when it cannot be written, the token files go to
    `fallback` and nothing is cached."""
    source = _sha256_text(text)
    split_at = int(len(text) * (1 - val_fraction))
    cache = cache if cache is not None else cache_root() / "corpus"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        usable = os.access(cache, os.W_OK)
    except OSError:
        usable = False
    if not usable:
        tokenizer = tokenizer or fit(text[:split_at])
        return tokenizer, TokenCorpus.build(text, tokenizer, fallback, val_fraction, source_sha256=source)
    base = {"format": FORMAT, "source_sha256": source, "val_fraction": val_fraction}
    if tokenizer is None:
        if fit_settings is None:
            tokenizer = fit(text[:split_at])
        else:
            entry = cache / f"tok-{_digest({**base, 'tokenizer_settings': fit_settings})}"
            tokenizer = _cached_tokenizer(entry, lambda: fit(text[:split_at]))
            _touch_and_prune(entry)
    entry = cache / f"tokens-{_digest({**base, 'tokenizer': tokenizer.fingerprint()})}"
    corpus = TokenCorpus.build(text, tokenizer, entry, val_fraction, source_sha256=source)
    _touch_and_prune(entry)
    return tokenizer, corpus
