"""MIDI files in and out: notes, piano rolls, folders of users' files.

Reading goes through pretty_midi (on top of mido): type 0 and type 1 files, any number of
tempo changes (times are seconds, converted with the file's tempo map), and the sustain pedal
(CC 64), which `read_notes` applies to note lengths by default — a note released while the
pedal is down keeps sounding until the pedal comes up (or the same pitch is struck again).

Piano rolls are boolean arrays (tracks, steps, pitches) on a grid of `steps_per_beat` steps
per quarter note, laid on the file's beats (ticks), so tempo changes do not bend the grid. A
roll goes back to MIDI by merging runs of consecutive "on" steps into one note; a binary roll
cannot tell a held note from a repeated one, which is the piano-roll format's own limit.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError

MIDI_EXTENSIONS = (".mid", ".midi", ".kar", ".smf")
SUSTAIN_CC = 64
PEDAL_DOWN = 64          # CC 64 values >= 64 mean the pedal is down (General MIDI)


@dataclass(frozen=True)
class Note:
    pitch: int
    velocity: int
    start: float             # seconds
    end: float               # seconds
    track: int = 0


@dataclass
class Track:
    """One instrument of a MIDI file (after applying the pedal, when asked)."""

    notes: list[Note]
    program: int = 0
    is_drum: bool = False
    name: str = ""


@dataclass
class MidiFolder:
    """The MIDI files of a folder that parsed, and how many did not."""

    files: list[Path] = field(default_factory=list)
    midis: list = field(default_factory=list)      # pretty_midi.PrettyMIDI per file
    skipped: int = 0
    skipped_files: list[Path] = field(default_factory=list)


def parse_midi(data: bytes | str | Path):
    """A pretty_midi.PrettyMIDI from a path or bytes; DataError if it is not a readable MIDI file."""
    import pretty_midi

    name = "<bytes>" if isinstance(data, (bytes, bytearray)) else str(data)
    try:
        src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else str(data)
        with warnings.catch_warnings():  # pretty_midi warns about odd-but-valid files (e.g. tempo events on track 1+)
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(src)
    except FileNotFoundError:
        raise DataError(f"MIDI file not found: {name}") from None
    except Exception as e:  # mido/pretty_midi raise many types (OSError, EOFError, KeyError, ValueError, ...)
        raise DataError(f"{name} is not a readable MIDI file ({type(e).__name__}: {e})") from None


def apply_sustain(notes: Sequence[Note], pedal: Sequence[tuple[float, int]]) -> list[Note]:
    """Lengthen notes released while the sustain pedal is down to the pedal's release (or to the
    next onset of the same pitch, whichever is first). `pedal` is (time, CC 64 value) events."""
    downs: list[tuple[float, float]] = []       # pedal-down intervals
    t_down = None
    for t, v in sorted(pedal):
        if v >= PEDAL_DOWN and t_down is None:
            t_down = t
        elif v < PEDAL_DOWN and t_down is not None:
            downs.append((t_down, t))
            t_down = None
    if t_down is not None:
        downs.append((t_down, float("inf")))
    if not downs:
        return list(notes)
    last_end = max(n.end for n in notes)
    onsets: dict[int, list[float]] = {}
    for n in notes:
        onsets.setdefault(n.pitch, []).append(n.start)
    out = []
    for n in notes:
        release = next((b if b < float("inf") else last_end for a, b in downs if a <= n.end < b), n.end)
        restrike = min((s for s in onsets[n.pitch] if s > n.start), default=float("inf"))
        out.append(Note(n.pitch, n.velocity, n.start, max(n.end, min(release, restrike)), n.track))
    return out


def read_tracks(pm, sustain: bool = True) -> list[Track]:
    """The instruments of a PrettyMIDI as Tracks, notes sorted by onset; the pedal applied if asked."""
    tracks = []
    for i, inst in enumerate(pm.instruments):
        notes = [Note(int(n.pitch), int(n.velocity), float(n.start), float(n.end), i) for n in inst.notes
                 if n.end > n.start]
        if sustain:
            notes = apply_sustain(notes, [(c.time, c.value) for c in inst.control_changes if c.number == SUSTAIN_CC])
        notes.sort(key=lambda n: (n.start, n.pitch))
        tracks.append(Track(notes, int(inst.program), bool(inst.is_drum), inst.name))
    return tracks


def read_notes(data: bytes | str | Path, sustain: bool = True, drums: bool = False) -> list[Note]:
    """Every note of a MIDI file (all tracks merged, sorted by onset then pitch)."""
    tracks = read_tracks(parse_midi(data), sustain)
    notes = [n for t in tracks if drums or not t.is_drum for n in t.notes]
    return sorted(notes, key=lambda n: (n.start, n.pitch, n.end))


def write_midi(tracks: Sequence[Track], tempo: float = 120.0):
    """A pretty_midi.PrettyMIDI holding `tracks` (times in seconds)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    for t in tracks:
        inst = pretty_midi.Instrument(program=t.program, is_drum=t.is_drum, name=t.name)
        inst.notes = [pretty_midi.Note(velocity=int(np.clip(n.velocity, 1, 127)), pitch=int(n.pitch),
                                       start=float(n.start), end=float(n.end)) for n in t.notes]
        pm.instruments.append(inst)
    return pm


def midi_bytes(pm) -> bytes:
    """A PrettyMIDI as Standard MIDI File bytes."""
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Piano rolls
# ---------------------------------------------------------------------------------------------
def piano_roll(pm, steps_per_beat: int = 4, lowest: int = 24, n_pitches: int = 84,
               sustain: bool = True, drums: bool = True) -> np.ndarray:
    """Boolean roll (tracks, steps, n_pitches), one row per instrument, on a grid of
    `steps_per_beat` steps per quarter note (read from ticks, so tempo changes keep the grid).
    A note covers the steps from its rounded onset to its rounded offset (at least one step);
    pitches outside [lowest, lowest + n_pitches) are dropped."""
    tracks = [t for t in read_tracks(pm, sustain) if drums or not t.is_drum]
    per_beat = float(pm.resolution)

    def step(t: float) -> int:
        return int(round(pm.time_to_tick(t) / per_beat * steps_per_beat))

    spans = [[(step(n.start), step(n.end), n.pitch - lowest) for n in t.notes] for t in tracks]
    n_steps = max((b for s in spans for _, b, _ in s), default=0)
    n_steps = max(n_steps, max((a + 1 for s in spans for a, _, _ in s), default=0))
    roll = np.zeros((len(tracks), n_steps, n_pitches), dtype=bool)
    for i, s in enumerate(spans):
        for a, b, p in s:
            if 0 <= p < n_pitches:
                roll[i, a:max(b, a + 1), p] = True
    return roll


def roll_to_tracks(roll: np.ndarray, steps_per_beat: int = 4, tempo: float = 120.0, lowest: int = 24,
                   velocity: int = 100, programs: Sequence[int] | None = None,
                   drums: Sequence[bool] | None = None, names: Sequence[str] | None = None) -> list[Track]:
    """Boolean roll (tracks, steps, pitches) -> Tracks: each run of consecutive on-steps of a pitch
    becomes one note."""
    roll = np.asarray(roll, dtype=bool)
    sec = 60.0 / tempo / steps_per_beat
    tracks = []
    for i in range(roll.shape[0]):
        padded = np.pad(roll[i].astype(np.int8), ((1, 1), (0, 0)))
        diff = np.diff(padded, axis=0)                         # +1 at onsets, -1 after offsets
        notes = []
        for p in range(roll.shape[2]):
            on, off = np.flatnonzero(diff[:, p] == 1), np.flatnonzero(diff[:, p] == -1)
            notes += [Note(lowest + p, velocity, a * sec, b * sec, i) for a, b in zip(on, off)]
        notes.sort(key=lambda n: (n.start, n.pitch))
        tracks.append(Track(notes, programs[i] if programs else 0, bool(drums[i]) if drums else False,
                            names[i] if names else f"track {i + 1}"))
    return tracks


def roll_to_midi(roll: np.ndarray, steps_per_beat: int = 4, tempo: float = 120.0, lowest: int = 24,
                 velocity: int = 100, programs: Sequence[int] | None = None,
                 drums: Sequence[bool] | None = None, names: Sequence[str] | None = None):
    """Boolean roll (tracks, steps, pitches) -> pretty_midi.PrettyMIDI."""
    return write_midi(roll_to_tracks(roll, steps_per_beat, tempo, lowest, velocity, programs, drums, names), tempo)


def voices_to_roll(steps: Sequence[Sequence[int | None]], lowest: int = 24, n_pitches: int = 84) -> np.ndarray:
    """A voice-per-column step grid (the JSB chorales' format: steps x voices, MIDI pitch or None)
    -> boolean roll (voices, steps, n_pitches)."""
    n_steps = len(steps)
    n_voices = max((len(s) for s in steps), default=0)
    roll = np.zeros((n_voices, n_steps, n_pitches), dtype=bool)
    for t, s in enumerate(steps):
        for v, p in enumerate(s):
            if p is not None and 0 <= int(p) - lowest < n_pitches:
                roll[v, t, int(p) - lowest] = True
    return roll


# ---------------------------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------------------------
def midi_files(path: str | Path) -> list[Path]:
    """A MIDI file, or every file under a folder (sorted; hidden files skipped)."""
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise DataError(f"data path not found: {p}")
    return sorted(f for f in p.rglob("*") if f.is_file() and not any(part.startswith(".")
                                                                       for part in f.relative_to(p).parts))


def load_midi_folder(path: str | Path, min_notes: int = 1) -> MidiFolder:
    """Parse every file of a folder (or one file); broken or non-MIDI files (and files with fewer
    than `min_notes` notes) are skipped and counted. DataError if none is left."""
    out = MidiFolder()
    for f in midi_files(path):
        try:
            pm = parse_midi(f)
            if sum(len(i.notes) for i in pm.instruments) < min_notes:
                raise DataError(f"{f} holds no notes")
        except DataError:
            out.skipped += 1
            out.skipped_files.append(f)
            continue
        out.files.append(f)
        out.midis.append(pm)
    if not out.midis:
        raise DataError(f"no readable MIDI file with notes in {path} ({out.skipped} file(s) skipped)")
    return out


# ---------------------------------------------------------------------------------------------
# Pictures and audio
# ---------------------------------------------------------------------------------------------
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/soundfonts/default.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2")


def save_piano_roll(roll: np.ndarray, path: str | Path, steps_per_bar: int = 16, lowest: int = 24,
                    names: Sequence[str] | None = None, title: str = "") -> Path:
    """A PNG of a roll (tracks, steps, pitches): one colour per track, time left to right, bar
    lines every `steps_per_bar` steps, the y range trimmed to the pitches used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ..engine.plots import save_figure

    roll = np.asarray(roll, dtype=bool)
    used = np.flatnonzero(roll.any(axis=(0, 1)))
    lo, hi = (max(0, used.min() - 2), min(roll.shape[2], used.max() + 3)) if len(used) else (12, 36)
    colors = np.asarray(plt.get_cmap("tab10").colors)
    image = np.ones((hi - lo, roll.shape[1], 3))                     # white; rows = pitches, low at the bottom
    for k in range(roll.shape[0]):
        image[roll[k, :, lo:hi].T] = colors[k % 10]
    fig, ax = plt.subplots(figsize=(max(4.0, roll.shape[1] / 8), 3.2))
    ax.imshow(image, origin="lower", aspect="auto", interpolation="nearest",
              extent=(0, roll.shape[1], lo + lowest - 0.5, hi + lowest - 0.5))
    for b in range(steps_per_bar, roll.shape[1], steps_per_bar):
        ax.axvline(b, color="0.6", lw=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel("MIDI pitch")
    if roll.shape[0] > 1:
        labels = names or [f"track {k + 1}" for k in range(roll.shape[0])]
        ax.legend([Patch(color=colors[k % 10]) for k in range(roll.shape[0])], labels, fontsize=7,
                  loc="upper right", ncol=roll.shape[0])
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=90)


def find_soundfont() -> Path | None:
    """A General MIDI SoundFont installed by the system (Debian: fluid-soundfont-gm), or None."""
    return next((Path(p) for p in SOUNDFONTS if Path(p).is_file()), None)


def render_wav(midi_path: str | Path, wav_path: str | Path, sample_rate: int = 44100) -> Path:
    """Render a MIDI file to WAV with the FluidSynth program and a GM SoundFont. Raises
    FileNotFoundError naming what is missing (Debian: apt-get install fluidsynth fluid-soundfont-gm)."""
    import shutil
    import subprocess
    import tempfile

    exe, sf2 = shutil.which("fluidsynth"), find_soundfont()
    if exe is None or sf2 is None:
        missing = " and ".join(x for x, have in (("fluidsynth", exe), ("a GM SoundFont", sf2)) if not have)
        raise FileNotFoundError(f"no WAV: {missing} not installed (apt-get install fluidsynth fluid-soundfont-gm)")
    wav_path = Path(wav_path)
    with tempfile.TemporaryDirectory(dir=wav_path.parent) as tmp:   # rename into place: never half a WAV
        out = Path(tmp) / wav_path.name
        subprocess.run([exe, "-ni", "-q", "-F", str(out), "-r", str(sample_rate), str(sf2), str(midi_path)],
                       check=True, capture_output=True, timeout=120)
        out.replace(wav_path)
    return wav_path


__all__ = ["MIDI_EXTENSIONS", "SOUNDFONTS", "MidiFolder", "Note", "Track", "apply_sustain", "find_soundfont",
           "load_midi_folder", "midi_bytes", "midi_files", "parse_midi", "piano_roll", "read_notes", "read_tracks",
           "render_wav", "roll_to_midi", "roll_to_tracks", "save_piano_roll", "voices_to_roll", "write_midi"]
