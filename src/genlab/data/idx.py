"""Reader for the IDX format of MNIST and Fashion-MNIST, plain or gzipped."""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

# Directories where system packages install Fashion-MNIST (Debian: dataset-fashion-mnist).
FASHION_MNIST_DIRS: list[str] = ["/usr/share/datasets/fashion-mnist"]

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_IMAGES_RE = re.compile(r"^(?P<prefix>.*)images[-.]idx3[-.]ubyte(?P<gz>\.gz)?$")


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    """Read a file, transparently gunzipping it (detected by magic, not extension)."""
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        if gz:
            with gzip.open(path, "rb") as f:
                return f.read() if limit is None else f.read(limit)
        with open(path, "rb") as f:
            return f.read() if limit is None else f.read(limit)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"corrupt or truncated gzip file {path}: {e}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (.gz or plain) into an array of its native dtype and shape.

    Validates the magic number, type code, dimensions and exact data size.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"IDX file not found: {path}")
    if not path.is_file():
        raise DataError(f"not a file: {path}")
    head = _read_bytes(path, limit=4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"not an IDX file (bad magic number): {path}")
    code, ndim = head[2], head[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"not an IDX file (unknown type code 0x{code:02x}): {path}")
    if ndim == 0:
        raise DataError(f"not an IDX file (zero dimensions): {path}")
    dtype = np.dtype(_IDX_DTYPES[code])
    header_len = 4 + 4 * ndim
    header = _read_bytes(path, limit=header_len)
    if len(header) < header_len:
        raise DataError(f"truncated IDX file (header cut short): {path}")
    dims = tuple(int(d) for d in np.frombuffer(header, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    # Read at most one byte past the expected end: enough to detect trailing garbage, and
    # a forged header can't make us decompress more than it promises.
    data = _read_bytes(path, limit=header_len + expected + 1)
    body = len(data) - header_len
    if body < expected:
        raise DataError(f"truncated IDX file ({body} of {expected} data bytes for shape {dims}): {path}")
    if body > expected:
        raise DataError(f"corrupt IDX file (extra bytes after shape {dims}): {path}")
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def load_idx_dataset(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Load an IDX images/labels pair: (images uint8 (N,H,W), labels int64 (N,))."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}: "
                        f"{images_path}")
    if labels.ndim != 1:
        raise DataError(f"expected 1-D labels, got shape {labels.shape}: {labels_path}")
    if len(images) != len(labels):
        raise DataError(f"{len(images)} images but {len(labels)} labels: {images_path} vs {labels_path}")
    return images, labels.astype(np.int64)


def _labels_for(folder: Path, prefix: str) -> Path | None:
    """The labels file matching an images file's prefix, gzipped or not, '-' or '.' separators."""
    for sep1 in ("-", "."):
        for sep2 in ("-", "."):
            for ext in (".gz", ""):
                lab = folder / f"{prefix}labels{sep1}idx1{sep2}ubyte{ext}"
                if lab.is_file():
                    return lab
    return None


def find_idx_pair(path: str | Path) -> list[tuple[Path, Path]]:
    """Find (images, labels) IDX file pairs in a directory, train-* first, then t10k-*, then others.

    A path to an images file returns its pair with the matching labels file. Returns an
    empty list when the directory holds no complete pair.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"path not found: {path}")
    candidates = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    pairs: list[tuple[Path, Path]] = []
    for img in candidates:
        m = _IMAGES_RE.match(img.name)
        if not m:
            continue
        lab = _labels_for(img.parent, m["prefix"])
        if lab is not None and all(lab != p[1] for p in pairs):
            pairs.append((img, lab))

    def rank(pair: tuple[Path, Path]) -> tuple[int, str]:
        name = pair[0].name.lower()
        return (0 if name.startswith("train") else 1 if name.startswith("t10k") else 2, name)

    return sorted(pairs, key=rank)


def find_fashion_mnist() -> Path | None:
    """Return the first directory of FASHION_MNIST_DIRS that holds an IDX pair, or None."""
    for d in FASHION_MNIST_DIRS:
        p = Path(d)
        try:
            if p.is_dir() and find_idx_pair(p):
                return p
        except (OSError, DataError):  # unreadable system dir: treat as absent
            continue
    return None
