"""music-transformer: a tiny model learns event sequences (beats the unigram baseline), continues a
prompt MIDI file through genlab.sampling (cache = no cache), streams event names; a MIDI folder
with bad files; bad data.
(Resume goes through the same trainer path as gpt and musegan, tested there.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import genlab
from genlab.data.midi import read_notes
from genlab.outputs import Midi

TINY = {"device": "cpu", "n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 8,
        "dropout": 0.0, "max_steps": 60, "lr": 3e-3, "warmup_steps": 0, "save_every": 0, "eval_every": 0,
        "log_every": 10, "eval_windows": 8, "eval_samples": 2, "eval_sample_events": 160}


@pytest.fixture(autouse=True)
def no_metric_plots(monkeypatch):
    """Skip the loss-curve PNG (tested with the engine): seconds per panel on a loaded machine."""
    from genlab.engine import trainer

    monkeypatch.setattr(trainer, "plot_metrics", lambda *a, **k: None)


def scales_json(path: Path, n_pieces: int = 10) -> Path:
    """Chorale-format pieces: rising and falling scales in four voices (very predictable)."""
    pieces = []
    for k in range(n_pieces):
        base = 55 + k % 5
        pieces.append([[base + 12 + (t // 2) % 8, base + 4, base - 5 + (t // 4) % 3, base - 12] for t in range(48)])
    path.write_text(json.dumps({"train": pieces[:-2], "test": pieces[-2:]}))
    return path


def test_trains_beats_unigram_and_continues_a_prompt(tmp_path: Path, shared_data: Path):
    run = genlab.train("music-transformer", data=scales_json(tmp_path / "s.json"), overrides=TINY,
                       out=tmp_path / "run", progress=False)
    m = run.evaluate()
    assert m["nll_per_event"] < m["unigram_nll_per_event"] < m["untrained_nll_per_event"]
    assert m["parse_pretty_midi"] == 1.0 and m["parse_music21"] == 1.0 and m["parse_mido"] == 1.0
    for k in ("pitch_classes_per_bar", "qualified_note_rate", "notes_per_bar", "pitch_range", "polyphony"):
        assert f"gen_{k}" in m and f"data_{k}" in m and f"untrained_{k}" in m
    assert m["data_polyphony"] == pytest.approx(4.0, abs=0.2)        # four voices, merged into one track
    assert m["untrained_pitch_range"] > m["data_pitch_range"]       # random events spread over the keyboard

    prompt = shared_data / "music" / "prompt.midi"
    out = run.sample(n=2, seed=1, prompt=str(prompt), max_new_tokens=40, top_k=10)
    assert isinstance(out, Midi) and len(out.midis) == 2
    given = read_notes(prompt)
    for data in out.midis:
        notes = read_notes(data)
        head = notes[:len(given)]                  # the prompt comes first, within the codec's 10 ms
        assert [n.pitch for n in head] == [n.pitch for n in given]
        assert max(abs(a.start - b.start) for a, b in zip(head, given)) <= 0.01
    assert out.midis != run.sample(n=2, seed=2, prompt=str(prompt), max_new_tokens=40, top_k=10).midis
    cached = run.sample(n=1, seed=3, max_new_tokens=40)
    assert run.sample(n=1, seed=3, max_new_tokens=40, use_cache=False).midis == cached.midis
    pieces = "".join(run.stream(seed=3, max_new_tokens=12)).split()
    assert 0 < len(pieces) <= 12 and all(p.split(":")[0] in ("on", "off", "shift", "vel") for p in pieces)


def test_bad_prompt_and_bad_data(tmp_path: Path):
    from genlab.cli import main

    (tmp_path / "x.mid").write_text("no")
    assert main(["train", "music-transformer", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 1


def test_trains_on_a_midi_folder_skipping_bad_files(tmp_path: Path):
    import numpy as np

    from genlab.data.midi import midi_bytes, roll_to_midi

    folder = tmp_path / "midi"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        roll = np.zeros((2, 64, 84), dtype=bool)
        for t in range(0, 64, 4):
            roll[0, t:t + 3, rng.integers(30, 50)] = roll[1, t:t + 4, 20] = True
        (folder / f"p{i}.mid").write_bytes(midi_bytes(roll_to_midi(roll)))
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    (folder / "readme.txt").write_text("not music")
    run = genlab.train("music-transformer", data=folder, overrides={**TINY, "max_steps": 2, "eval_samples": 0},
                       out=tmp_path / "run", progress=False)
    assert "3 MIDI files" in run.recipe.data_name and "unreadable file(s) skipped" in run.recipe.data_name
    assert run.evaluate()["nll_per_event"] > 0
    out = run.sample(n=1, seed=0, max_new_tokens=20)
    assert len(out.midis) == 1 and all(0 <= n.pitch < 128 for n in read_notes(out.midis[0]))   # it parses
