"""Plain-text files for users' data, and the CLI's generic data-path check."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

BINARY_SNIFF_BYTES = 8192  # NUL bytes in this many leading bytes mean "binary"
MAX_UNDECODABLE = 0.30  # more than this fraction of replaced characters means "binary"


@dataclass
class TextData:
    """Text read from one file or a folder of .txt files."""

    text: str
    files: list[Path] = field(default_factory=list)
    replaced: int = 0  # invalid UTF-8 sequences replaced by U+FFFD

    def __len__(self) -> int:
        return len(self.text)


def _decode(raw: bytes, path: Path) -> tuple[str, int]:
    """Decode bytes as text; returns (text, number of replaced invalid sequences)."""
    # UTF-16/32 with a BOM (e.g. saved by Windows Notepad) is text even though it holds NULs.
    for bom, enc in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                     (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(enc), 0
            except UnicodeDecodeError:
                break  # a fake BOM: fall through to the binary checks
    if b"\x00" in raw[:BINARY_SNIFF_BYTES]:
        raise DataError(f"{path} looks binary, expected text")
    text = raw.decode("utf-8-sig", errors="replace")
    # U+FFFD already present in the file (bytes EF BF BD) is not a replacement.
    replaced = text.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
    if text and replaced / len(text) > MAX_UNDECODABLE:
        raise DataError(f"{path} looks binary, expected text ({replaced} of {len(text)} characters undecodable)")
    return text, replaced


def _normalize_newlines(text: str) -> str:
    # Same as Python's universal newlines: \r\n and lone \r become \n.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_file(path: Path) -> tuple[str, int]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    text, replaced = _decode(raw, path)
    return _normalize_newlines(text), replaced


def _visible(p: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in p.relative_to(root).parts)


def read_text(path: str | Path) -> TextData:
    """Read a UTF-8 text file, or every *.txt file of a folder (recursive, sorted), concatenated.

    Invalid UTF-8 is replaced by U+FFFD and counted; newlines are normalised to \\n; files of
    a folder are separated by a newline when one does not already end with it.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"text data not found: {shown(p)}")
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.txt") if f.is_file() and _visible(f, p))
        if not files:
            raise DataError(f"no .txt files in folder {p}")
    else:
        files = [p]
    parts: list[str] = []
    replaced = 0
    for f in files:
        t, r = _read_file(f)
        replaced += r
        if parts and t and not parts[-1].endswith("\n"):
            parts.append("\n")  # keep the last line of one file apart from the first of the next
        if t:
            parts.append(t)
    text = "".join(parts)
    if not text.strip():
        raise DataError(f"{p} is empty")
    return TextData(text=text, files=files, replaced=replaced)


def shown(path: str | Path) -> str:
    """A path for messages: relative to the working directory when inside it (paths are stored absolute)."""
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd())) if p.is_absolute() else str(p)
    except ValueError:
        return str(p)


def check_data_path(path: str | Path) -> Path:
    """Return the path if it exists and is non-empty; DataError for missing, empty files or empty folders."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"data path not found: {shown(p)}")
    if not (p.is_dir() or p.is_file()):
        raise DataError(f"{shown(p)} is not a regular file or folder (a device, pipe or socket cannot be data)")
    if p.is_dir():
        try:
            has_file = any(f.is_file() and f.stat().st_size > 0 and _visible(f, p) for f in p.rglob("*"))
        except OSError as e:
            raise DataError(f"cannot read folder {p}: {e.strerror or e}") from None
        if not has_file:
            raise DataError(f"{shown(p)} is empty (no non-empty files in the folder)")
    else:
        try:
            size = p.stat().st_size
        except OSError as e:
            raise DataError(f"cannot read {p}: {e.strerror or e}") from None
        if size == 0:
            raise DataError(f"{shown(p)} is empty")
    return p


def read_number_rows(path: str | Path, columns: int | None = None, min_rows: int = 10,
                     what: str = "rows of numbers") -> "np.ndarray":
    """Rows of numbers (comma or whitespace separated) from a text file, as float32 (rows, columns).

    A first line that is not numbers is a header and skipped. `columns` takes the first that many
    numbers of each line; None takes them all and requires every row to have the same length.
    Non-finite values are refused with their line number: they would make training diverge.
    """
    import math

    import numpy as np

    rows = []
    for i, line in enumerate(read_text(path).text.splitlines()):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        try:
            row = [float(p) for p in (parts if columns is None else parts[:columns])]
            if columns is not None and len(row) < columns:
                raise ValueError
        except ValueError:
            if i == 0:
                continue  # header
            want = "a row of numbers" if columns is None else f"{columns} numbers"
            raise DataError(f"{path}: line {i + 1} is not {want}: {line[:60]!r}") from None
        if not all(math.isfinite(v) and abs(v) <= float(np.finfo(np.float32).max) for v in row):
            raise DataError(f"{path}: line {i + 1} holds a non-finite number: {line[:60]!r}")
        rows.append(row)
    if len(rows) < min_rows:
        raise DataError(f"{path}: need at least {min_rows} {what}, found {len(rows)}")
    if len({len(r) for r in rows}) != 1:
        raise DataError(f"{path}: every row must hold the same number of values")
    return np.asarray(rows, dtype=np.float32)
