"""MuseGAN metrics on hand-made rolls whose answers are known, and the MIDI parse rates."""
from __future__ import annotations

import numpy as np
import pytest

from genlab.data.midi import midi_bytes, roll_to_midi
from genlab.metrics.music import (drum_pattern, empty_bar_rate, music_stats, note_lengths, parse_rates,
                                  qualified_note_rate, texture_stats, tonal_centroid, tonal_distance,
                                  used_pitch_classes)

LOW = 24  # pitch of roll row 0 (C1): row r is pitch class r % 12


def blank(samples: int = 1, tracks: int = 2, bars: int = 2, steps: int = 16) -> np.ndarray:
    return np.zeros((samples, tracks, bars, steps, 84), dtype=bool)


def test_empty_bars_and_pitch_classes():
    r = blank(samples=2)
    r[0, 0, 0, 0:4, 36] = True          # C
    r[0, 0, 0, 4:8, 40] = True          # E
    r[0, 0, 0, 8:12, 48] = True         # C an octave up: same class
    r[0, 0, 1, :, 43] = True            # G
    r[1, 0, 0, 0, 37] = True            # C#
    # track 0: 1 empty bar of 4 (sample 1, bar 1); track 1: all 4 empty
    assert empty_bar_rate(r).tolist() == [0.25, 1.0]
    upc = used_pitch_classes(r)
    assert upc[0] == pytest.approx((2 + 1 + 1) / 3) and np.isnan(upc[1])   # over non-empty bars only


def test_qualified_notes_follow_notes_across_bar_lines():
    r = blank(tracks=1)
    r[0, 0, 0, 0:2, 30] = True          # 2 steps: not qualified
    r[0, 0, 0, 4:7, 30] = True          # 3 steps: qualified
    r[0, 0, 0, 14:16, 31] = True        # 2 + 3 steps across the bar line: one 5-step note
    r[0, 0, 1, 0:3, 31] = True
    r[0, 0, 1, 5, 32] = True            # 1 step
    assert sorted(note_lengths(r[0, 0].reshape(32, 84)).tolist()) == [1, 2, 3, 5]
    assert qualified_note_rate(r).tolist() == [0.5]
    assert qualified_note_rate(r, min_steps=5).tolist() == [0.25]


def test_tonal_distance():
    r = blank(tracks=3, bars=1)
    for p in (36, 40, 43):              # C major triad in tracks 0 and 1
        r[0, 0, 0, :, p] = r[0, 1, 0, :, p] = True
    r[0, 2, 0, :, 37] = True            # C# alone in track 2
    td = tonal_distance(r)
    assert td[0] == pytest.approx(0.0)                    # identical chroma
    assert td[1] == pytest.approx(td[2]) and td[1] > 0.5  # both to track 2
    c = np.zeros(12)
    c[[0, 4, 7]] = 1
    # the tonal centroid of a chord is the mean of its notes' centroids
    assert tonal_centroid(c) == pytest.approx(np.mean([tonal_centroid(np.eye(12)[k]) for k in (0, 4, 7)], axis=0))
    # a fifth is closer than a tritone (Harte et al.)
    fifth = np.linalg.norm(tonal_centroid(np.eye(12)[0]) - tonal_centroid(np.eye(12)[7]))
    tritone = np.linalg.norm(tonal_centroid(np.eye(12)[0]) - tonal_centroid(np.eye(12)[6]))
    assert fifth < tritone


def test_drum_pattern_on_a_fine_grid():
    d = np.zeros((1, 1, 96, 10), dtype=bool)   # 96 steps per bar: the 16th grid is every 6 steps
    d[0, 0, [0, 6, 12, 24, 40], 0] = True      # 40 % 6 = 4: off grid by 2 steps
    d[0, 0, [1], 1] = True                     # within 1 step of the grid
    assert drum_pattern(d) == pytest.approx(5 / 6)


def test_music_stats_summary_and_drums():
    r = blank(tracks=3)
    r[0, 0, :, 0:4, 36] = True
    r[0, 1, :, 0:4, 43] = True
    r[0, 2, :, ::4, 0] = True                  # a drum track: not counted as pitched
    s = music_stats(r, drums=[False, False, True])
    assert s["empty_bar_rate"] == 0.0 and s["pitch_classes_per_bar"] == 1.0 and s["qualified_note_rate"] == 1.0
    assert s["drum_pattern"] == 1.0 and s["tonal_distance"] > 0


def test_parse_rates():
    roll = np.zeros((2, 16, 84), dtype=bool)
    roll[0, 0:8, 40] = roll[1, 4:12, 30] = True
    good = midi_bytes(roll_to_midi(roll))
    rates = parse_rates([good, good, b"not a midi file", good[:20]])
    assert rates == {"parse_pretty_midi": 0.5, "parse_music21": 0.5, "parse_mido": 0.5}


def test_texture_stats():
    r = blank(samples=2, tracks=1)
    r[0, 0, 0, 0:8, 40] = True                 # one held note across half a bar ...
    r[0, 0, 0, 8:16, 40] = True                # ... continues: still one note
    r[0, 0, 0, 0:4, 52] = True                 # a second voice an octave up: two at once for 4 steps
    r[0, 0, 1, ::2, 45] = True                 # bar 2: eight short notes
    s = texture_stats(r)                       # sample 1 is silent and left out of range and polyphony
    assert s["notes_per_bar"] == pytest.approx((1 + 1 + 8) / 4)
    assert s["pitch_range"] == 12
    assert s["polyphony"] == pytest.approx((4 * 2 + 12 * 1 + 8 * 1) / 24)
    assert texture_stats(blank(tracks=1))["notes_per_bar"] == 0.0
