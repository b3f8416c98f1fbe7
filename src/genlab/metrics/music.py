"""The MuseGAN paper's music metrics (Dong et al. 2018), on binary piano rolls.

Rolls are boolean arrays (samples, tracks, bars, steps per bar, pitches). Each metric is
reported per track and as the mean over tracks:

- empty-bar rate: share of bars in which a track plays nothing;
- used pitch classes per bar: distinct pitch classes (0-11) a track plays in a bar, averaged
  over its non-empty bars (an empty bar says nothing about harmony and is counted above);
- qualified-note rate: share of notes at least `min_steps` steps long (a note is a run of
  consecutive on-steps of one pitch, followed across bar lines); fragmented, stuttering
  output scores low;
- tonal distance: the Euclidean distance between two tracks' tonal centroids (Harte et al.
  2006: chroma projected onto the circles of fifths and of minor and major thirds) per bar,
  averaged over bars where both play and over track pairs; low = harmonically related;
- drum pattern (only for tracks marked as drums): share of drum onsets on the 16th-note grid
  (within one step of it). At 16 steps per bar every step is on that grid, so it is 1 by
  construction and only says something at finer resolutions.

For performances (one track holding every voice, as the music-transformer writes) three texture
figures say what the MuseGAN metrics do not (`texture_stats`):

- notes per bar: note onsets per bar (a held note counts once);
- pitch range: semitones between the lowest and the highest note of a segment;
- polyphony: pitches sounding at once, averaged over the steps where anything sounds.

`parse_rates` asks independent MIDI readers (pretty_midi, music21 and mido) to read files.
"""
from __future__ import annotations

import io
import itertools
import warnings
from typing import Sequence

import numpy as np

# Harte et al. (2006): circle of fifths (r=1), minor thirds (r=1), major thirds (r=0.5)
_L = np.arange(12)
TONNETZ = np.stack([np.sin(_L * 7 * np.pi / 6), np.cos(_L * 7 * np.pi / 6),
                    np.sin(_L * 3 * np.pi / 2), np.cos(_L * 3 * np.pi / 2),
                    0.5 * np.sin(_L * 2 * np.pi / 3), 0.5 * np.cos(_L * 2 * np.pi / 3)])


def _check(rolls: np.ndarray) -> np.ndarray:
    rolls = np.asarray(rolls).astype(bool)
    if rolls.ndim != 5:
        raise ValueError(f"rolls must be (samples, tracks, bars, steps, pitches), got shape {rolls.shape}")
    return rolls


def chroma(rolls: np.ndarray, lowest: int = 24) -> np.ndarray:
    """Active steps per pitch class: (..., steps, pitches) -> (..., 12), summed over steps."""
    per_pitch = rolls.sum(-2)
    pcs = (np.arange(rolls.shape[-1]) + lowest) % 12
    out = np.zeros(per_pitch.shape[:-1] + (12,))
    for pc in range(12):
        out[..., pc] = per_pitch[..., pcs == pc].sum(-1)
    return out


def empty_bar_rate(rolls: np.ndarray) -> np.ndarray:
    """Per track: share of bars without a note."""
    rolls = _check(rolls)
    return (~rolls.any(axis=(-1, -2))).mean(axis=(0, 2))


def used_pitch_classes(rolls: np.ndarray, lowest: int = 24) -> np.ndarray:
    """Per track: distinct pitch classes per non-empty bar (NaN for a track that never plays)."""
    rolls = _check(rolls)
    used = (chroma(rolls, lowest) > 0).sum(-1)              # (samples, tracks, bars)
    nonempty = rolls.any(axis=(-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (used * nonempty).sum(axis=(0, 2)) / nonempty.sum(axis=(0, 2))


def note_lengths(track_roll: np.ndarray) -> np.ndarray:
    """Lengths (in steps) of every note of one track's roll (steps, pitches)."""
    padded = np.pad(np.asarray(track_roll, dtype=np.int8), ((1, 1), (0, 0)))
    d = np.diff(padded, axis=0)
    _, on = np.nonzero(d.T == 1)          # onset steps, ordered by pitch then time
    _, off = np.nonzero(d.T == -1)        # the matching offsets, same order
    return off - on


def qualified_note_rate(rolls: np.ndarray, min_steps: int = 3) -> np.ndarray:
    """Per track: share of notes lasting >= min_steps steps (bars joined; NaN for no notes)."""
    rolls = _check(rolls)
    n, t, b, s, p = rolls.shape
    good, total = np.zeros(t), np.zeros(t)
    for i in range(n):
        for k in range(t):
            lengths = note_lengths(rolls[i, k].reshape(b * s, p))
            good[k] += (lengths >= min_steps).sum()
            total[k] += len(lengths)
    with np.errstate(invalid="ignore", divide="ignore"):
        return good / total


def tonal_centroid(chroma_vec: np.ndarray) -> np.ndarray:
    """(..., 12) chroma -> (..., 6) tonal centroid (the chroma is L1-normalised first)."""
    norm = np.abs(chroma_vec).sum(-1, keepdims=True)
    return (chroma_vec / np.where(norm > 0, norm, 1)) @ TONNETZ.T


def tonal_distance(rolls: np.ndarray, lowest: int = 24, tracks: Sequence[int] | None = None) -> np.ndarray:
    """Per pair of tracks (in itertools.combinations order): mean tonal distance over bars where both play."""
    rolls = _check(rolls)
    idx = list(tracks) if tracks is not None else list(range(rolls.shape[1]))
    c = chroma(rolls[:, idx], lowest)                      # (samples, tracks, bars, 12)
    tc = tonal_centroid(c)
    plays = c.sum(-1) > 0
    out = []
    for a, b in itertools.combinations(range(len(idx)), 2):
        both = plays[:, a] & plays[:, b]
        d = np.linalg.norm(tc[:, a] - tc[:, b], axis=-1)
        out.append(d[both].mean() if both.any() else np.nan)
    return np.asarray(out)


def drum_pattern(drum_rolls: np.ndarray, tolerance: int = 1) -> float:
    """(samples, bars, steps, pitches) of a drum track: share of onsets within `tolerance` steps of
    the 16th-note grid (NaN without onsets)."""
    r = np.asarray(drum_rolls, dtype=bool)
    steps = r.shape[-2]
    grid = max(1, steps // 16)
    flat = r.reshape(-1, r.shape[-3] * steps, r.shape[-1])
    onsets = flat & ~np.pad(flat, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    t = np.nonzero(onsets)[1] % steps
    if len(t) == 0:
        return float("nan")
    dist = np.minimum(t % grid, grid - t % grid)
    return float((dist <= (tolerance if grid > 1 else 0)).mean())


def music_stats(rolls: np.ndarray, lowest: int = 24, drums: Sequence[bool] | None = None,
                min_steps: int = 3) -> dict[str, float]:
    """The metrics as one flat dict of means (pitched tracks only; drums get drum_pattern)."""
    rolls = _check(rolls)
    drums = list(drums) if drums is not None else [False] * rolls.shape[1]
    pitched = [i for i, d in enumerate(drums) if not d]
    out = {"empty_bar_rate": float(np.nanmean(empty_bar_rate(rolls)))}
    if pitched:
        pr = rolls[:, pitched]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # a track that never plays is NaN, not a warning
            out["pitch_classes_per_bar"] = float(np.nanmean(used_pitch_classes(pr, lowest)))
            out["qualified_note_rate"] = float(np.nanmean(qualified_note_rate(pr, min_steps)))
            if len(pitched) > 1:
                out["tonal_distance"] = float(np.nanmean(tonal_distance(pr, lowest)))
    for i, d in enumerate(drums):
        if d:
            out["drum_pattern"] = drum_pattern(rolls[:, i])
    return out


def texture_stats(rolls: np.ndarray) -> dict[str, float]:
    """Notes per bar (per track), pitch range per segment and polyphony, as means over the
    segments (samples, tracks, bars, steps, pitches) where anything sounds."""
    rolls = _check(rolls)
    n, t, b, s, p = rolls.shape
    flat = rolls.reshape(n, t, b * s, p)
    onsets = flat & ~np.pad(flat, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]
    per_step = flat.any(1)                                    # (samples, steps, pitches): any track
    sounding = per_step.any(-1)                               # (samples, steps)
    plays = sounding.any(-1)
    if not plays.any():
        return {"notes_per_bar": 0.0, "pitch_range": float("nan"), "polyphony": float("nan")}
    pitches = per_step.any(1)                                 # (samples, pitches)
    lo, hi = pitches.argmax(-1), p - 1 - pitches[:, ::-1].argmax(-1)
    return {"notes_per_bar": float(onsets.sum() / (n * t * b)),
            "pitch_range": float((hi - lo)[plays].mean()),
            "polyphony": float(per_step.sum(-1)[sounding].mean())}


def parse_rates(midis: Sequence[bytes]) -> dict[str, float]:
    """Share of MIDI files (bytes) that pretty_midi, music21 and mido each read without an error."""
    import mido
    import pretty_midi
    from music21 import converter

    readers = {"parse_pretty_midi": lambda d: pretty_midi.PrettyMIDI(io.BytesIO(d)),
               "parse_music21": lambda d: converter.parseData(d, format="midi"),
               "parse_mido": lambda d: mido.MidiFile(file=io.BytesIO(d))}
    ok = dict.fromkeys(readers, 0)
    for data in midis:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, read in readers.items():
                try:
                    read(data)
                    ok[name] += 1
                except Exception:   # any failure to read is what is being counted
                    pass
    n = max(len(midis), 1)
    return {k: v / n for k, v in ok.items()}


__all__ = ["TONNETZ", "chroma", "drum_pattern", "empty_bar_rate", "music_stats", "note_lengths", "parse_rates",
           "qualified_note_rate", "texture_stats", "tonal_centroid", "tonal_distance", "used_pitch_classes"]
