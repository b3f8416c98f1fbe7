"""The MIDI performance-event codec: layout, round trips on real files, edge cases."""
from __future__ import annotations

from pathlib import Path

import pytest

from genlab.data.midi import Note, midi_bytes, read_notes
from genlab.tokenizers.events import (EOS, NOTE_OFF, NOTE_ON, PAD, TIME_SHIFT, VELOCITY, VOCAB_SIZE, decode_midi,
                                      decode_notes, encode_midi, encode_notes, token_name, velocity_bin)


def _key(n: Note) -> tuple:
    return (round(n.start, 2), n.pitch, round(n.end, 2))


def assert_same_notes(a: list[Note], b: list[Note]) -> None:
    """Same pitches, onsets and offsets within 10 ms, velocities within one bin."""
    a, b = sorted(a, key=_key), sorted(b, key=_key)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.pitch == y.pitch
        assert abs(x.start - y.start) <= 0.01 and abs(x.end - y.end) <= 0.01
        assert abs(velocity_bin(x.velocity) - velocity_bin(y.velocity)) <= 1


def test_vocabulary_layout():
    assert (NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY, EOS, PAD, VOCAB_SIZE) == (0, 128, 256, 356, 388, 389, 390)
    assert token_name(TIME_SHIFT) == "shift:10ms" and token_name(VELOCITY - 1) == "shift:1000ms"
    assert token_name(VELOCITY + 31) == "vel:31" and velocity_bin(127) == 31 and velocity_bin(0) == 0


@pytest.mark.parametrize("name", ["example.midi", "prompt.midi"])
def test_round_trip_real_files(shared_data: Path, name: str):
    path = shared_data / "music" / name
    tokens = encode_midi(path)
    assert tokens[-1] == EOS and all(0 <= t < EOS for t in tokens[:-1])
    assert_same_notes(read_notes(path), decode_notes(tokens))


def test_round_trip_through_a_midi_file(shared_data: Path):
    path = shared_data / "music" / "prompt.midi"
    back = read_notes(midi_bytes(decode_midi(encode_midi(path))))
    assert_same_notes(read_notes(path), back)


def test_long_gaps_restrikes_and_short_notes():
    notes = [Note(60, 100, 0.0, 0.5), Note(60, 30, 0.5, 0.9),           # re-struck at the same instant
             Note(64, 127, 3.456, 3.457),                                # shorter than 10 ms
             Note(67, 1, 3.0, 5.5)]
    tokens = encode_notes(notes)
    shifts = [t for t in tokens if TIME_SHIFT <= t < VELOCITY]
    assert TIME_SHIFT + 99 in shifts                                     # the 2.1 s gap takes several shifts
    back = decode_notes(tokens)
    assert sorted((n.pitch, round(n.start, 2), round(n.end, 2)) for n in back) == \
        [(60, 0.0, 0.5), (60, 0.5, 0.9), (64, 3.46, 3.47), (67, 3.0, 5.5)]
    assert sorted(n.velocity for n in back if n.pitch == 60) == [30, 102]     # bin centres of 30 and 100


def test_decoding_is_forgiving():
    """Sampled sequences can be ill-formed: stray note-offs are ignored, open notes are closed,
    PAD is skipped and decoding stops at EOS."""
    tokens = [NOTE_OFF + 50, NOTE_ON + 60, PAD, TIME_SHIFT + 9, NOTE_ON + 62, TIME_SHIFT + 19, EOS, NOTE_ON + 70]
    back = decode_notes(tokens)
    assert [(n.pitch, round(n.start, 2), round(n.end, 2)) for n in back] == [(60, 0.0, 0.3), (62, 0.1, 0.3)]


def test_sustain_is_applied_to_lengths():
    """The codec reads notes with the pedal applied (documented): a key released under the pedal
    is encoded as sounding until the pedal lifts."""
    import io

    import mido

    f = mido.MidiFile(ticks_per_beat=480)      # 120 bpm: 480 ticks = 0.5 s
    f.tracks.append(mido.MidiTrack([
        mido.Message("control_change", control=64, value=127, time=0),
        mido.Message("note_on", note=60, velocity=64, time=0),
        mido.Message("note_off", note=60, velocity=0, time=480),
        mido.Message("control_change", control=64, value=0, time=960)]))
    buf = io.BytesIO()
    f.save(file=buf)
    (n,) = decode_notes(encode_midi(buf.getvalue()))
    assert (n.start, n.end) == (0.0, 1.5)
    (n,) = decode_notes(encode_midi(buf.getvalue(), sustain=False))
    assert (n.start, n.end) == (0.0, 0.5)
