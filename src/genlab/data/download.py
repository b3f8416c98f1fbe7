"""The one download helper: checksum-verified, cached, atomic, and clear when offline."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import DataError, WriteFailed

_CHUNK = 1 << 20
_ALLOWED_SCHEMES = ("http", "https", "ftp", "file")


def cache_root() -> Path:
    """genlab's cache root: $GENLAB_CACHE if set, else ~/.cache/genlab."""
    env = os.environ.get("GENLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genlab"


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _offline() -> bool:
    return os.environ.get("GENLAB_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def download(url: str, sha256: str, filename: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """Return the cached file for `url`, downloading and verifying it against `sha256` if needed.

    Cache: `cache_dir`, else $GENLAB_CACHE/downloads, else ~/.cache/genlab/downloads. The file
    is streamed to a temp file, hashed, and renamed into place only if the checksum matches.
    GENLAB_OFFLINE=1 forbids any network access.
    """
    expected = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise DataError(f"invalid sha256 {sha256!r} for {url}: expected 64 hex digits")
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in _ALLOWED_SCHEMES:
        raise DataError(f"cannot download {url}: unsupported URL scheme {parsed.scheme!r}")
    name = filename or Path(urllib.parse.unquote(parsed.path)).name or f"download-{expected[:16]}"
    if name in (".", "..") or "/" in name or os.sep in name:
        raise DataError(f"invalid download filename {name!r} for {url}")
    folder = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "downloads"
    dest = folder / name
    hint = f"place the file at {dest} to use it offline"

    if dest.is_file():
        try:
            if sha256_file(dest) == expected:
                return dest
        except OSError:
            pass  # unreadable cache entry: download it again
        stale = f"cached {dest} has the wrong checksum"
    else:
        stale = ""
    if _offline():
        why = f"{stale}; " if stale else ""
        raise DataError(f"cannot download {url}: offline (GENLAB_OFFLINE=1); {why}{hint}")

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create download cache {folder}: {e.strerror or e}") from None
    from ..engine.io import atomic_write

    try:
        # genlab's one atomic writer: a temp file beside dest, renamed over it only when the
        # download finished and its checksum matched (any error removes the temp file)
        with atomic_write(dest) as out:
            h = hashlib.sha256()
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    for chunk in iter(lambda: resp.read(_CHUNK), b""):
                        h.update(chunk)
                        out.write(chunk)
            except urllib.error.HTTPError as e:
                raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}; {hint}") from None
            except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException) as e:
                reason = getattr(e, "reason", None) or e
                raise DataError(f"cannot download {url}: no network ({reason}); {hint}") from None
            got = h.hexdigest()
            if got != expected:
                raise DataError(f"checksum mismatch for {url}: expected sha256 {expected}, got {got}")
    except WriteFailed as e:   # the atomic writer's own "cannot write ..." (a full disk, a read-only cache)
        raise DataError(str(e)) from None
    except OSError as e:
        raise DataError(f"cannot write {dest}: {e.strerror or e}") from None
    return dest
