"""Atomic file writes: a file is either the old version or the new one, never half.

Every file genlab writes into a run directory goes through `atomic_write`, so a
kill -9 or a full disk during a save leaves the previous file intact.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

import torch
from safetensors.torch import save as safetensors_bytes

from ..errors import WriteFailed


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside `path`; on success fsync it and rename it over `path`.

    The file gets the permissions of an ordinary new file (0666 less the umask), not mkstemp's
    0600. A failed write (a full disk) leaves the previous `path` as it was and says so.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise WriteFailed(f"cannot write {path}: {e.strerror or e}") from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            kept = "the previous version is kept" if path.exists() else "nothing was written"
            raise WriteFailed(f"cannot write {path}: {e.strerror or e} ({kept})") from None
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | Path,
                     metadata: dict[str, str] | None = None) -> None:
    """Save tensors as safetensors, atomically. Shared storage (tied weights) is cloned."""
    seen: dict[tuple[int, int], str] = {}
    clean = {}
    for name, t in tensors.items():
        t = t.detach().cpu()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        # safetensors refuses tensors that share memory; tied weights are stored twice
        clean[name] = t.clone().contiguous() if key in seen or not t.is_contiguous() else t
        seen[key] = name
    write_bytes(path, safetensors_bytes(clean, metadata=metadata))


def save_torch(obj: object, path: str | Path) -> None:
    """torch.save into a buffer, then write atomically (obj must be weights_only-loadable)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())
