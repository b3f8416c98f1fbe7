"""musegan: tiny runs train, write MIDI that parses, resume exactly, evaluate beside an untrained
generator; MIDI folders with bad files; the Midi output."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.cli import main
from genlab.data.midi import midi_bytes, parse_midi, roll_to_midi
from genlab.engine.rundir import RunDir
from genlab.errors import ConfigError, DataError
from genlab.outputs import Midi

TINY = {"device": "cpu", "width": 0.05, "batch_size": 4, "n_critic": 2, "max_steps": 3, "save_every": 0,
        "eval_every": 0, "log_every": 1, "eval_samples": 8, "eval_parse": 2, "z_dim": 8}


@pytest.fixture(autouse=True)
def no_metric_plots(monkeypatch):
    """The loss-curve PNG (engine/plots.py, tested with the engine) costs seconds per panel on a
    loaded machine and musegan logs many panels: skip drawing it here."""
    from genlab.engine import trainer

    monkeypatch.setattr(trainer, "plot_metrics", lambda *a, **k: None)


def chorale_json(path: Path, n_pieces: int = 6, steps: int = 64) -> Path:
    """A small JSB-format file: scales in four voices (deterministic)."""
    rng = np.random.default_rng(0)
    pieces = []
    for _ in range(n_pieces):
        base = rng.integers(55, 65)
        piece = [[int(base + 12 + (t // 4) % 5), int(base + 4), int(base - 5 + (t // 8) % 3), int(base - 12)]
                 for t in range(steps)]
        pieces.append(piece)
    path.write_text(json.dumps({"train": pieces[:-2], "test": pieces[-2:]}))
    return path


def midi_folder(root: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(1)
    root.mkdir()
    for i in range(n):
        roll = np.zeros((2, 64, 84), dtype=bool)
        for k in range(2):
            for t in range(0, 64, 4):
                roll[k, t:t + 3, rng.integers(20, 50)] = True
        (root / f"piece{i}.mid").write_bytes(midi_bytes(roll_to_midi(roll, programs=[0, 0], drums=[False, True])))
    (root / "notes.txt").write_text("not a MIDI file")
    (root / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    return root


def test_tiny_musegan_trains_samples_and_evaluates(tmp_path: Path):
    data = chorale_json(tmp_path / "chorales.json")
    run = genlab.train("musegan", data=data, overrides=TINY, out=tmp_path / "run", progress=False)
    rows = [r for r in RunDir(run.path).read_metrics() if r["kind"] == "train"]
    assert len(rows) == 3 and all(np.isfinite(r["critic_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    out = run.sample(n=2, seed=3)
    assert isinstance(out, Midi) and len(out.midis) == 2 and out.rolls.shape == (2, 4, 32, 48)
    from genlab.metrics.music import note_lengths

    for data_bytes, roll in zip(out.midis, out.rolls):     # the MIDI holds exactly the roll's notes
        pm = parse_midi(data_bytes)
        assert sum(len(i.notes) for i in pm.instruments) == sum(len(note_lengths(t)) for t in roll)
        assert len(pm.instruments) == sum(bool(t.any()) for t in roll)   # silent voices write no track
    assert run.sample(n=2, seed=3).midis == out.midis      # same seed, same music
    js = out.to_json()
    assert js["kind"] == "midi" and parse_midi(base64.b64decode(js["midi_base64"][0]))
    files = out.to_files(tmp_path / "samples")
    assert {p.suffix for p in files} >= {".mid", ".png"}
    metrics = genlab.load(run.path).evaluate()
    for k in ("empty_bar_rate", "pitch_classes_per_bar", "qualified_note_rate"):
        assert f"gen_{k}" in metrics and f"data_{k}" in metrics and f"untrained_{k}" in metrics
    assert metrics["data_empty_bar_rate"] == 0.0 and metrics["data_qualified_note_rate"] == 1.0
    assert metrics["parse_pretty_midi"] == 1.0 and metrics["parse_music21"] == 1.0


def test_resume_equals_uninterrupted(tmp_path: Path):
    data = chorale_json(tmp_path / "chorales.json")
    cfg = {**TINY, "max_steps": 4, "save_every": 2, "eval_parse": 0}
    full = genlab.train("musegan", data=data, overrides=cfg, out=tmp_path / "full", progress=False)
    genlab.train("musegan", data=data, overrides={**cfg, "max_steps": 2}, out=tmp_path / "part", progress=False)
    resumed = genlab.train("musegan", data=data, overrides=cfg, out=tmp_path / "part", resume=True, progress=False)
    for name in ("generator", "critic", "generator_ema"):
        a, b = full.recipe.modules[name].state_dict(), resumed.recipe.modules[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_midi_folder_with_bad_files(tmp_path: Path, capsys):
    folder = midi_folder(tmp_path / "midi")
    run = genlab.train("musegan", data=folder, overrides={**TINY, "max_steps": 1, "n_tracks": 2, "eval_parse": 0},
                       out=tmp_path / "run", progress=False)
    assert run.recipe.train.shape[1:] == (2, 2, 16, 48)
    assert "2 unreadable file(s) skipped" in run.recipe.data_name
    assert run.recipe.drums == [False, True]
    m = run.evaluate()                                     # the drum track gets the drum metric, not pitch ones
    assert m["data_drum_pattern"] == 1.0 and "gen_drum_pattern" in m and "data_tonal_distance" not in m
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.mid").write_text("hello")
    capsys.readouterr()
    assert main(["train", "musegan", "--data", str(bad), "--out", str(tmp_path / "r2"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("genlab: error:") and "no readable MIDI file" in err and "\n" not in err


def test_config_checks():
    from genlab.recipes.musegan import MuseGANRecipeConfig
    from genlab.engine.config import validate

    for bad in ({"steps_per_bar": 12}, {"n_pitches": 50}, {"binarize": "soft"}, {"grad_accum": 2},
                {"lowest": 100}, {"steps_up": "linear"}):
        with pytest.raises(ConfigError):
            validate(MuseGANRecipeConfig(**bad))


def test_midi_output_without_fluidsynth(tmp_path: Path, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    roll = np.zeros((1, 2, 32, 48), dtype=bool)
    roll[0, 0, :8, 10] = True
    out = Midi([midi_bytes(roll_to_midi(roll[0], lowest=36))] * 2, rolls=roll.repeat(2, 0), metadata={"lowest": 36})
    paths = out.to_files(tmp_path)
    assert [p.name for p in paths] == ["sample-01.mid", "sample-01.png", "sample-02.mid", "sample-02.png"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fluidsynth" in err                    # one line, once
    no_rolls = Midi([paths[0].read_bytes()]).to_files(tmp_path / "b")      # pictures drawn from the MIDI
    assert no_rolls[1].suffix == ".png" and no_rolls[1].stat().st_size > 0


def test_midi_output_renders_wav_when_fluidsynth_is_installed(tmp_path: Path):
    import shutil
    import wave

    from genlab.data.midi import find_soundfont

    if shutil.which("fluidsynth") is None or find_soundfont() is None:
        pytest.skip("fluidsynth or a GM SoundFont not installed (apt-get install fluidsynth fluid-soundfont-gm)")
    roll = np.zeros((1, 16, 48), dtype=bool)
    roll[0, :8, 24] = True                                   # one C4 for two beats
    paths = Midi([midi_bytes(roll_to_midi(roll, lowest=36))], audio=True).to_files(tmp_path)
    wav = [p for p in paths if p.suffix == ".wav"]
    assert len(wav) == 1
    with wave.open(str(wav[0])) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        assert w.getnframes() / w.getframerate() >= 1.0      # two beats at 120 bpm
    assert np.abs(frames).max() > 1000                        # not silence


def test_a_run_saved_before_the_binary_networks_still_loads(tmp_path: Path):
    """config.toml of a run from before `hard` / `steps_up` / `onset_stream` / `stochastic` existed:
    the saved defaults give back the networks it was trained with (today's defaults would not fit)
    and its argmax notes in training (a resumed run trains on as it did)."""
    data = chorale_json(tmp_path / "jsb.json")
    old = {"hard": False, "steps_up": "transpose", "onset_stream": False, "stochastic": False}
    run = genlab.train("musegan", data=data, overrides={**TINY, **old, "max_steps": 1, "eval_parse": 0},
                       out=tmp_path / "run", progress=False)
    toml = (tmp_path / "run" / "config.toml").read_text()
    kept = [line for line in toml.splitlines() if line.split(" = ")[0] not in old]
    assert len(kept) == len(toml.splitlines()) - len(old)
    (tmp_path / "run" / "config.toml").write_text("\n".join(kept) + "\n")
    loaded = genlab.load(tmp_path / "run")
    assert {k: getattr(loaded.recipe.config, k) for k in old} == old
    for name, module in run.recipe.modules.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, loaded.recipe.modules[name].state_dict()[key])
