"""The embedded music default: a handful of music21 chorales (never the whole corpus in tests)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from genlab.data import chorales
from genlab.errors import DataError


def test_music21_ships_the_chorales_and_a_few_convert():
    paths = chorales.chorale_paths()
    assert len(paths) > 300                                   # inside the wheel: no network
    data = chorales.convert_chorales(paths[:3])
    pieces = data["train"] + data["test"]
    assert len(pieces) == 3
    for piece in pieces:
        assert len(piece) >= 32 and all(len(step) == 4 for step in piece)
        sounding = [p for step in piece for p in step if p is not None]
        assert 30 <= min(sounding) and max(sounding) <= 90
        # soprano above bass on most steps
        both = [(s[0], s[3]) for s in piece if s[0] is not None and s[3] is not None]
        assert sum(a > b for a, b in both) > 0.95 * len(both)


def test_cache_is_used_not_reparsed(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(chorales, "convert_chorales", lambda paths: calls.append(1))
    first = chorales.cache_file()
    assert "music21-" in first.parent.name and str(first).startswith(str(tmp_path))
    first.parent.mkdir(parents=True)
    first.write_text(json.dumps({"train": [[[60, 55, 52, 48]] * 32], "test": []}))
    assert chorales.bach_chorales()["train"][0][0] == [60, 55, 52, 48]
    assert calls == []                                         # read from the cache, nothing parsed


def test_step_json(tmp_path: Path, shared_data: Path):
    data = chorales.load_step_json(shared_data / "music" / "jsb_chorales_16th.json")
    assert {len(data[k]) for k in ("train", "valid", "test")} == {229, 76, 77}
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": [[["C4"]]]}')
    with pytest.raises(DataError, match="expected"):
        chorales.load_step_json(bad)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a readable JSON"):
        chorales.load_step_json(bad)


def test_first_use_converts_once_and_caches(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    few = chorales.chorale_paths()[:2]                         # a stand-in corpus of two pieces
    monkeypatch.setattr(chorales, "chorale_paths", lambda: few)
    data = chorales.bach_chorales()
    assert chorales.cache_file().is_file() and len(data["train"]) == 2
    monkeypatch.setattr(chorales, "convert_chorales", lambda paths: pytest.fail("parsed again"))
    assert chorales.bach_chorales() == data
