"""The embedded music default: J. S. Bach's four-part chorales from music21's bundled corpus.

music21 ships its corpus inside the wheel (no network). Parsing the ~400 chorale scores takes
about a minute, so they are converted once into the JSB chorales' step format — a piece is a
list of 16th-note steps, a step is the MIDI pitches of soprano, alto, tenor and bass (None
where a voice rests) — and cached as JSON under ~/.cache/genlab/music21-<version>/; a new
music21 version converts afresh. The same format is what ../shared/data/music/jsb_chorales_16th.json
holds, so the recipes read both the same way.

Bars start at multiples of 16 steps (4/4): a pickup measure is shifted right by its missing
beats. Repeats are not expanded; ties come out as repeated steps of the same pitch, as in JSB.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ..errors import DataError

Piece = list[list[int | None]]
VOICES = ("soprano", "alto", "tenor", "bass")
STEPS_PER_BEAT = 4
TEST_EVERY = 10          # every 10th chorale (in corpus order) is held out


def chorale_paths() -> list[Path]:
    """music21's bundled Bach scores (some are not four-part chorales; conversion skips those)."""
    from music21 import corpus

    return sorted(Path(p) for p in corpus.getComposer("bach") if Path(p).suffix in (".mxl", ".xml", ".krn"))


def convert_score(path: str | Path) -> Piece | None:
    """One score -> steps x (S, A, T, B) MIDI pitches; None if it is not a four-voice piece."""
    from music21 import converter, stream

    score = converter.parse(str(path))
    parts = list(score.parts)
    named = {p.partName.lower(): p for p in parts if p.partName}
    if all(v in named for v in VOICES):
        parts = [named[v] for v in VOICES]
    elif len(parts) != 4:
        return None
    first = parts[0].getElementsByClass(stream.Measure).first()
    shift = float(first.paddingLeft) if first is not None else 0.0   # pickup: push to the bar line
    n_steps = int(round((float(score.highestTime) + shift) * STEPS_PER_BEAT))
    if n_steps <= 0:
        return None
    steps: Piece = [[None] * 4 for _ in range(n_steps)]
    for v, part in enumerate(parts):
        for n in part.flatten().notes:
            a = int(round((float(n.offset) + shift) * STEPS_PER_BEAT))
            b = int(round((float(n.offset) + float(n.quarterLength) + shift) * STEPS_PER_BEAT))
            pitch = max(p.midi for p in n.pitches)   # a chord in one voice (rare): its top note
            for t in range(max(a, 0), min(b, n_steps)):
                steps[t][v] = int(pitch)
    return steps


def convert_chorales(paths: Sequence[str | Path]) -> dict[str, list[Piece]]:
    """Convert scores into {"train": [...], "test": [...]} (every TEST_EVERY-th piece held out)."""
    pieces = [p for p in (convert_score(path) for path in paths) if p is not None]
    if not pieces:
        raise DataError("none of the given scores is a four-voice chorale")
    return {"train": [p for i, p in enumerate(pieces) if i % TEST_EVERY != TEST_EVERY - 1],
            "test": [p for i, p in enumerate(pieces) if i % TEST_EVERY == TEST_EVERY - 1]}


def cache_file() -> Path:
    import music21

    from .download import cache_root

    return cache_root() / f"music21-{music21.__version__}" / "bach_chorales_16th.json"


def bach_chorales() -> dict[str, list[Piece]]:
    """The embedded default, from the cache when there (converted and cached on first use)."""
    path = cache_file()
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass  # a damaged cache: convert again
    data = convert_chorales(chorale_paths())
    from ..engine.io import write_text

    write_text(path, json.dumps(data, separators=(",", ":")))
    return data


def load_step_json(path: str | Path) -> dict[str, list[Piece]]:
    """A JSB-format JSON file {"train": [piece, ...], "valid": ..., "test": ...}; DataError if not."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: not a readable JSON file of chorales ({e})") from None
    ok = isinstance(data, dict) and isinstance(data.get("train"), list) and data["train"] and all(
        isinstance(piece, list) and all(isinstance(s, list) and all(p is None or isinstance(p, int) for p in s)
                                        for s in piece) for split in data.values() for piece in split)
    if not ok:
        raise DataError(f"{path}: expected {{\"train\": [piece, ...], ...}} with a piece a list of steps "
                        "and a step a list of MIDI pitches (or null)")
    return data


__all__ = ["Piece", "bach_chorales", "cache_file", "chorale_paths", "convert_chorales", "convert_score",
           "load_step_json"]
