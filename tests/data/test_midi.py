"""MIDI I/O: type 0 and 1 files, tempo changes, the sustain pedal, piano rolls, folders with bad files."""
from __future__ import annotations

import io
from pathlib import Path

import mido
import numpy as np
import pytest

from genlab.data.midi import (apply_sustain, load_midi_folder, midi_bytes, parse_midi, piano_roll, read_notes,
                              read_tracks, roll_to_midi, voices_to_roll, Note)
from genlab.errors import DataError

TPB = 480  # ticks per beat of the hand-made files


def smf(tracks: list[list[mido.Message | mido.MetaMessage]], type_: int = 1) -> bytes:
    """A Standard MIDI File from messages with delta times in ticks."""
    f = mido.MidiFile(type=type_, ticks_per_beat=TPB)
    for msgs in tracks:
        f.tracks.append(mido.MidiTrack(msgs))
    buf = io.BytesIO()
    f.save(file=buf)
    return buf.getvalue()


def note(pitch: int, wait: int, length: int, channel: int = 0, velocity: int = 80) -> list[mido.Message]:
    return [mido.Message("note_on", note=pitch, velocity=velocity, time=wait, channel=channel),
            mido.Message("note_off", note=pitch, velocity=0, time=length, channel=channel)]


def test_type1_tempo_change_moves_seconds_not_beats():
    # 120 bpm for one beat, then 60 bpm: a note on beat 2 starts at 0.5 s + 1.0 s = 1.5 s
    tempo = [mido.MetaMessage("set_tempo", tempo=500000, time=0), mido.MetaMessage("set_tempo", tempo=1000000, time=TPB)]
    data = smf([tempo, note(60, 0, TPB) + note(64, TPB, TPB)])
    notes = read_notes(data)
    assert [(n.pitch, round(n.start, 6), round(n.end, 6)) for n in notes] == [(60, 0.0, 0.5), (64, 1.5, 2.5)]
    roll = piano_roll(parse_midi(data), steps_per_beat=4)     # the grid follows beats, not seconds
    assert roll.shape == (1, 12, 84)
    assert roll[0, 0:4, 60 - 24].all() and roll[0, 8:12, 64 - 24].all() and roll.sum() == 8


def test_type0_channels_become_tracks():
    msgs = [mido.Message("program_change", program=40, channel=1, time=0)] + note(60, 0, TPB) + note(72, 0, TPB, channel=1)
    tracks = read_tracks(parse_midi(smf([msgs], type_=0)))
    assert sorted((t.program, [n.pitch for n in t.notes]) for t in tracks) == [(0, [60]), (40, [72])]


def test_sustain_pedal_lengthens_notes_until_release_or_restrike():
    pedal = [(0.5, 127), (2.0, 0)]
    notes = [Note(60, 80, 0.0, 1.0), Note(64, 80, 0.0, 0.2), Note(64, 80, 1.5, 1.7), Note(67, 80, 2.5, 3.0)]
    out = {(n.pitch, n.start): n.end for n in apply_sustain(notes, pedal)}
    assert out[(60, 0.0)] == 2.0            # released under the pedal: sounds until the pedal lifts
    assert out[(64, 0.0)] == 0.2            # released before the pedal went down
    assert out[(64, 1.5)] == 2.0
    assert out[(67, 2.5)] == 3.0            # after the pedal
    # the same through a file: CC 64 down at beat 0.5, up at beat 2, note 60 released at beat 1
    msgs = [mido.Message("control_change", control=64, value=127, time=TPB // 2)] + note(60, 0, TPB // 2) + \
           [mido.Message("control_change", control=64, value=0, time=TPB)]
    data = smf([msgs])
    assert read_notes(data)[0].end == pytest.approx(1.0)            # 2 beats at 120 bpm
    assert read_notes(data, sustain=False)[0].end == pytest.approx(0.5)
    # a note re-struck under the pedal is cut at the new onset
    cut = apply_sustain([Note(60, 80, 0.0, 0.3), Note(60, 80, 0.6, 0.8)], [(0.1, 127), (2.0, 0)])
    assert [n.end for n in cut] == [0.6, 2.0]


def test_piano_roll_midi_round_trip():
    rng = np.random.default_rng(0)
    roll = np.zeros((3, 64, 84), dtype=bool)
    for k in range(3):
        t = 0
        while t < 60:
            length, pitch = rng.integers(1, 6), rng.integers(30, 60)
            roll[k, t:t + length, pitch] = True
            t += length + 1                          # a gap: a binary roll cannot mark re-strikes
    pm = parse_midi(midi_bytes(roll_to_midi(roll, steps_per_beat=4, tempo=97.0, programs=[0, 40, 19])))
    assert [i.program for i in pm.instruments] == [0, 40, 19]
    back = piano_roll(pm, steps_per_beat=4)
    assert np.array_equal(back, roll[:, :back.shape[1]]) and not roll[:, back.shape[1]:].any()


def test_voices_to_roll():
    roll = voices_to_roll([[60, None], [60, 48], [20, 48]], lowest=24, n_pitches=84)
    assert roll.shape == (2, 3, 84)
    assert roll[0, :2, 36].all() and roll[1, 1:, 24].all() and roll.sum() == 4   # pitch 20 is below the range


def test_real_files(shared_data: Path):
    for name, n_tracks in (("example.midi", 4), ("prompt.midi", 1)):
        pm = parse_midi(shared_data / "music" / name)
        assert len(pm.instruments) == n_tracks
        assert read_notes(shared_data / "music" / name)


def test_folder_skips_and_counts_bad_files(tmp_path: Path):
    good = smf([note(60, 0, TPB) + note(62, 0, TPB)])
    (tmp_path / "a.mid").write_bytes(good)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.midi").write_bytes(good)
    (tmp_path / "readme.txt").write_text("not music")
    (tmp_path / "truncated.mid").write_bytes(good[:30])
    (tmp_path / "silent.mid").write_bytes(smf([[mido.MetaMessage("end_of_track", time=0)]]))
    folder = load_midi_folder(tmp_path)
    assert [f.name for f in folder.files] == ["a.mid", "b.midi"]
    assert folder.skipped == 3 and {f.name for f in folder.skipped_files} == {"readme.txt", "truncated.mid", "silent.mid"}
    with pytest.raises(DataError, match="not a readable MIDI"):
        parse_midi(b"MThd garbage")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mid").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="no readable MIDI file"):
        load_midi_folder(bad)
