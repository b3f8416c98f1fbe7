"""The MIDI performance-event codec of the Music Transformer chapter (Oore et al. 2018).

390 tokens:

    0-127    note-on, pitch 0-127
    128-255  note-off, pitch 0-127
    256-355  time-shift of 1-100 steps of 10 ms (10 ms to 1 s; longer gaps take several)
    356-387  set-velocity, 32 bins of 4 MIDI velocities each (bin b decodes to 4b + 2)
    388      EOS (end of piece)
    389      PAD (never decoded)

Times are quantised to the 10 ms grid as absolute times before taking differences, so
errors do not accumulate: every onset and offset decodes within 5 ms of the original, every
velocity within its bin (at most 2 off). A note shorter than 10 ms is stretched to 10 ms.

The sustain pedal is applied to note lengths when reading (data.midi.read_notes: a note
released with the pedal down sounds until the pedal lifts or the pitch is struck again) and
is not encoded as an event. Drum tracks are left out; all other tracks merge into one stream
(the performance format has no instruments). At one instant, note-offs come before note-ons,
so a re-struck pitch stays two notes; a note-off closes the earliest open note of its pitch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..data.midi import Note, Track, read_notes, write_midi

NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY = 0, 128, 256, 356
N_SHIFTS, N_VELOCITY_BINS = 100, 32
EOS, PAD = 388, 389
VOCAB_SIZE = 390
STEP_SECONDS = 0.01


def velocity_bin(velocity: int) -> int:
    return min(max(int(velocity), 0), 127) * N_VELOCITY_BINS // 128


def bin_velocity(b: int) -> int:
    return b * (128 // N_VELOCITY_BINS) + 2


def token_name(t: int) -> str:
    """A readable name for one token (for debugging and docs)."""
    if t < NOTE_OFF:
        return f"on:{t}"
    if t < TIME_SHIFT:
        return f"off:{t - NOTE_OFF}"
    if t < VELOCITY:
        return f"shift:{(t - TIME_SHIFT + 1) * 10}ms"
    if t < EOS:
        return f"vel:{t - VELOCITY}"
    return "EOS" if t == EOS else "PAD" if t == PAD else f"?{t}"


def encode_notes(notes: Sequence[Note], eos: bool = True) -> list[int]:
    """Notes (times in seconds) -> event tokens."""
    events = []                                   # (step, 0 = off / 1 = on, pitch, velocity)
    for n in notes:
        a = int(round(n.start / STEP_SECONDS))
        b = max(int(round(n.end / STEP_SECONDS)), a + 1)
        events.append((a, 1, n.pitch, n.velocity))
        events.append((b, 0, n.pitch, n.velocity))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    out, now, vel = [], 0, None
    for step, kind, pitch, velocity in events:
        gap = step - now
        while gap > 0:
            shift = min(gap, N_SHIFTS)
            out.append(TIME_SHIFT + shift - 1)
            gap -= shift
        now = step
        if kind == 1:
            vb = velocity_bin(velocity)
            if vb != vel:
                out.append(VELOCITY + vb)
                vel = vb
            out.append(NOTE_ON + pitch)
        else:
            out.append(NOTE_OFF + pitch)
    if eos:
        out.append(EOS)
    return out


def decode_notes(tokens: Sequence[int]) -> list[Note]:
    """Event tokens -> notes (stops at EOS; notes left open end at the last time reached, at
    least 10 ms after their onset; a note-off without an open note is ignored)."""
    now, vel = 0, bin_velocity(velocity_bin(64))
    open_notes: dict[int, list[tuple[int, int]]] = {}
    notes = []
    for t in tokens:
        t = int(t)
        if t == EOS:
            break
        if NOTE_ON <= t < NOTE_OFF:
            open_notes.setdefault(t, []).append((now, vel))
        elif NOTE_OFF <= t < TIME_SHIFT:
            pitch = t - NOTE_OFF
            if open_notes.get(pitch):
                start, v = open_notes[pitch].pop(0)
                notes.append(Note(pitch, v, start * STEP_SECONDS, max(now, start + 1) * STEP_SECONDS))
        elif TIME_SHIFT <= t < VELOCITY:
            now += t - TIME_SHIFT + 1
        elif VELOCITY <= t < EOS:
            vel = bin_velocity(t - VELOCITY)
    for pitch, starts in open_notes.items():
        notes += [Note(pitch, v, s * STEP_SECONDS, max(now, s + 1) * STEP_SECONDS) for s, v in starts]
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def encode_midi(data: bytes | str | Path, sustain: bool = True, eos: bool = True) -> list[int]:
    """A MIDI file (path or bytes) -> event tokens (pedal applied to lengths, drums left out)."""
    return encode_notes(read_notes(data, sustain=sustain), eos=eos)


def decode_midi(tokens: Sequence[int], program: int = 0):
    """Event tokens -> a one-track pretty_midi.PrettyMIDI (piano by default)."""
    return write_midi([Track(decode_notes(tokens), program=program, name="performance")])


__all__ = ["EOS", "NOTE_OFF", "NOTE_ON", "PAD", "STEP_SECONDS", "TIME_SHIFT", "VELOCITY", "VOCAB_SIZE",
           "bin_velocity", "decode_midi", "decode_notes", "encode_midi", "encode_notes", "token_name",
           "velocity_bin"]
