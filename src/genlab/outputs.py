"""What `generate()` returns: a few typed results that every consumer understands.

A recipe's `generate(opts)` returns one of these; `Run.sample`, the CLI and the server use
only this interface and never ask which recipe made it:

    out = run.sample(n=8)         # an Output
    out.to_files(folder)          # PNG / CSV / text files, returns their paths
    out.to_json()                 # a JSON-friendly dict (what an HTTP API returns)
    out.summary()                 # what `genlab sample` prints (the texts themselves for text)

New families add a type here (MIDI, ...) rather than a new branch in a consumer.
Outputs hold plain numpy arrays and Python values, never tensors on a device, so they can
cross threads and processes.
"""
from __future__ import annotations

import abc
import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class Output(abc.ABC):
    kind: ClassVar[str] = ""

    @abc.abstractmethod
    def to_files(self, out_dir: str | Path) -> list[Path]:
        """Write the result into `out_dir` (created if needed); return the paths written."""

    @abc.abstractmethod
    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form, tagged with `kind`."""

    def summary(self) -> str:
        """A short human-readable description for the terminal."""
        return f"{self.kind} output"


@dataclass
class Texts(Output):
    """n generated texts. `texts[i]` is the full text (prompt + continuation) as users read it;
    `completions[i]` is the continuation alone, which is what an API returns."""

    kind: ClassVar[str] = "texts"
    texts: list[str]
    completions: list[str] = field(default_factory=list)
    prompt: str = ""
    prompt_tokens: int = 0
    completion_tokens: list[int] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)  # "length" | "eos" | "stop"
    unknown_prompt_tokens: int = 0  # prompt pieces outside the vocabulary (read as <unk>)
    name: str = "sample"            # files are <name>-01.txt, <name>-02.txt, ...
    headings: list[str] = field(default_factory=list)  # what summary() prints above each text (data excerpts)

    def __post_init__(self) -> None:
        n = len(self.texts)
        if not self.completions:
            self.completions = [t[len(self.prompt):] if t.startswith(self.prompt) else t for t in self.texts]
        if not self.completion_tokens:
            self.completion_tokens = [0] * n
        if not self.finish_reasons:
            self.finish_reasons = ["length"] * n

    def to_files(self, out_dir: str | Path) -> list[Path]:
        from .engine.io import write_text

        out = Path(out_dir)
        paths = []
        for i, text in enumerate(self.texts, 1):
            path = out / f"{self.name}-{i:02d}.txt"
            write_text(path, text if text.endswith("\n") else text + "\n")
            paths.append(path)
        return paths

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "prompt": self.prompt, "texts": self.texts, "completions": self.completions,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "finish_reasons": self.finish_reasons, "unknown_prompt_tokens": self.unknown_prompt_tokens}

    def empty(self) -> list[int]:
        """Indices of samples whose continuation is empty or only whitespace."""
        return [i for i, c in enumerate(self.completions) if not c.strip()]

    def summary(self) -> str:
        """Each text under a header (trailing whitespace trimmed), then notes on empty samples and
        prompt pieces outside the vocabulary."""
        n = len(self.texts)
        heads = self.headings or [f"sample {i + 1} of {n} ({self.completion_tokens[i]} tokens, "
                                  f"{self.finish_reasons[i]})" for i in range(n)]
        blocks = [f"--- {head} ---\n{text.rstrip()}" for head, text in zip(heads, self.texts)]
        notes = []
        if self.empty():
            which = ", ".join(str(i + 1) for i in self.empty())
            notes.append(f"note: sample(s) {which} of {n} continued the prompt with nothing or only whitespace "
                         "(greedy decoding follows whitespace in indented corpora: give a prompt or a temperature > 0)")
        if self.unknown_prompt_tokens:
            notes.append(f"note: {self.unknown_prompt_tokens} piece(s) of the prompt are not in the vocabulary "
                         "and were read as <unk>")
        return "\n".join(blocks + notes)


@dataclass
class Images(Output):
    """Images as uint8 (N, H, W, C), laid out as a grid of `ncol` columns when written.

    `labels[i]` captions image i (what it was asked to be, its class, "label 3\npred 5") or is
    None; `row_labels` / `col_labels` caption the grid's rows and columns (e.g. one row per
    class, one column per interpolation step); `title` says how to read the picture;
    `highlight[i]` draws image i's caption in red (e.g. a wrong prediction); with `files_dir`,
    each image is also written alone as `<files_dir>/00000.png`, ... (e.g. translated inputs).

    `to_files` writes two PNGs: `<name>.png`, the picture people open (cells scaled up by
    nearest neighbour to at least data.images.MIN_CELL px, with the captions), and
    `<name>-native.png`, every pixel as generated (for metrics and diffs)."""

    kind: ClassVar[str] = "images"
    images: np.ndarray
    labels: list[str | None] = field(default_factory=list)
    ncol: int = 0
    row_labels: list[str] = field(default_factory=list)
    col_labels: list[str] = field(default_factory=list)
    name: str = "samples"
    title: str = ""
    highlight: list[bool] = field(default_factory=list)
    files_dir: str = ""

    def __post_init__(self) -> None:
        a = np.asarray(self.images)
        if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] not in (1, 3, 4):
            raise ValueError(f"Images expects uint8 (N, H, W, C) with C in 1, 3, 4; got {a.dtype} {a.shape}")
        self.images = a
        if not self.labels:
            self.labels = [None] * len(a)
        if self.ncol <= 0:
            self.ncol = max(1, int(np.ceil(np.sqrt(len(a)))))

    @classmethod
    def from_float(cls, images: Any, **kwargs: Any) -> "Images":
        """From float (N, C, H, W) images in [-1, 1] (a tensor or an array)."""
        from .data.images import to_uint8

        return cls(to_uint8(images), **kwargs)

    def to_files(self, out_dir: str | Path) -> list[Path]:
        from .data.images import image_grid, labelled_grid, save_png

        out = Path(out_dir)
        picture = labelled_grid(self.images, self.ncol, self.labels, self.row_labels, self.col_labels, self.title,
                                self.highlight)
        paths = [save_png(picture, out / f"{self.name}.png"),
                 save_png(image_grid(self.images, self.ncol), out / f"{self.name}-native.png")]
        if self.files_dir:
            paths += [save_png(a, out / self.files_dir / f"{i:05d}.png") for i, a in enumerate(self.images)]
        return paths

    def png_bytes(self, i: int) -> bytes:
        """Image i alone as PNG bytes."""
        from .data.images import png_bytes

        return png_bytes(self.images[i])

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "shape": list(self.images.shape), "labels": self.labels, "ncol": self.ncol,
                "row_labels": self.row_labels, "col_labels": self.col_labels, "title": self.title,
                "png_base64": [base64.b64encode(self.png_bytes(i)).decode() for i in range(len(self.images))]}

    def summary(self) -> str:
        n, h, w, c = self.images.shape
        return f"{n} images of {w}x{h}x{c}"


@dataclass
class Points(Output):
    """Rows of numbers with named columns: points on a curve (x, y), integers (value), ..."""

    kind: ClassVar[str] = "points"
    values: np.ndarray
    columns: list[str]
    name: str = "points"
    plot: Any = None  # optional callable(values, path) -> Path that draws the picture users open

    def __post_init__(self) -> None:
        a = np.asarray(self.values)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[1] != len(self.columns):
            raise ValueError(f"Points: values of shape {a.shape} do not match columns {self.columns}")
        self.values = a

    def to_files(self, out_dir: str | Path) -> list[Path]:
        from .engine.io import write_text

        out = Path(out_dir)
        csv = out / f"{self.name}.csv"
        fmt = (lambda v: str(int(v))) if self.values.dtype.kind in "iu" else (lambda v: f"{v:.6g}")
        write_text(csv, ",".join(self.columns) + "\n"
                   + "".join(",".join(fmt(v) for v in row) + "\n" for row in self.values))
        paths = [csv]
        if self.plot is not None:
            paths.insert(0, self.plot(self.values, out / f"{self.name}.png"))
        return paths

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, "values": self.values.tolist()}

    def summary(self) -> str:
        return f"{len(self.values)} rows of ({', '.join(self.columns)})"


@dataclass
class Translations(Output):
    """Sentences and their translations, aligned line for line (an empty source line gets an
    empty translation, so line i of one file always matches line i of the other)."""

    kind: ClassVar[str] = "translations"
    sources: list[str]
    translations: list[str]
    src_lang: str = ""
    tgt_lang: str = ""
    name: str = "translations"

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.translations):
            raise ValueError(f"Translations: {len(self.sources)} sources but {len(self.translations)} translations")

    def to_files(self, out_dir: str | Path) -> list[Path]:
        """`<name>.<tgt>` (one translation per line) beside `<name>.<src>` (the sources)."""
        from .engine.io import write_text

        out = Path(out_dir)
        paths = []
        for lines, lang in ((self.sources, self.src_lang or "src"), (self.translations, self.tgt_lang or "tgt")):
            path = out / f"{self.name}.{lang}"
            write_text(path, "".join(line.replace("\n", " ") + "\n" for line in lines))
            paths.append(path)
        return paths[::-1]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "src_lang": self.src_lang, "tgt_lang": self.tgt_lang,
                "sources": self.sources, "translations": self.translations}

    def summary(self) -> str:
        return "\n".join(f"{s}\n  -> {t}" for s, t in zip(self.sources, self.translations))


@dataclass
class Midi(Output):
    """n pieces of music as Standard MIDI File bytes, with what a player or a server needs to
    know about them. `rolls` (optional) are the boolean piano rolls (n, tracks, steps, pitches)
    the pieces came from; without them the pictures are drawn from the MIDI itself.

    to_files writes per piece `<name>-NN.mid`, a piano-roll `<name>-NN.png` and, when FluidSynth
    and a General MIDI SoundFont are installed, `<name>-NN.wav` (otherwise one line on stderr
    says why there is no audio)."""

    kind: ClassVar[str] = "midi"
    midis: list[bytes]
    rolls: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # tempo, steps_per_beat, lowest, programs, ...
    name: str = "sample"
    audio: bool = True          # try to render WAV

    def to_files(self, out_dir: str | Path) -> list[Path]:
        import sys

        from .data.midi import parse_midi, piano_roll, render_wav, save_piano_roll
        from .engine.io import write_bytes

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        spb = int(self.metadata.get("steps_per_beat", 4))
        lowest = int(self.metadata.get("lowest", 24))
        wav_error = None if self.audio else "audio off"
        for i, data in enumerate(self.midis, 1):
            mid = out / f"{self.name}-{i:02d}.mid"
            write_bytes(mid, data)
            if self.rolls is not None:
                roll = self.rolls[i - 1]
            else:
                roll, lowest = piano_roll(parse_midi(data), spb, lowest=0, n_pitches=128), 0
            png = save_piano_roll(roll, out / f"{self.name}-{i:02d}.png", 4 * spb, lowest,
                                  self.metadata.get("track_names"), title=mid.name)
            paths += [mid, png]
            if wav_error is None:
                try:
                    paths.append(render_wav(mid, out / f"{self.name}-{i:02d}.wav"))
                except FileNotFoundError as e:
                    wav_error = str(e)
                    print(f"genlab: {e}", file=sys.stderr)
        return paths

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "metadata": self.metadata,
                "midi_base64": [base64.b64encode(m).decode() for m in self.midis]}

    def summary(self) -> str:
        return f"{len(self.midis)} MIDI file(s)"


@dataclass
class Bundle(Output):
    """Several named outputs from one call (e.g. samples plus a denoising strip)."""

    kind: ClassVar[str] = "bundle"
    parts: dict[str, Output]

    def to_files(self, out_dir: str | Path) -> list[Path]:
        return [p for part in self.parts.values() for p in part.to_files(out_dir)]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "parts": {k: v.to_json() for k, v in self.parts.items()}}

    def summary(self) -> str:
        parts = [(k, v.summary()) for k, v in self.parts.items()]
        if any("\n" in text for _, text in parts):  # tables: one block each
            return "\n\n".join(text if "\n" in text else f"{k}: {text}" for k, text in parts)
        return "; ".join(f"{k}: {text}" for k, text in parts)


@dataclass
class Table(Output):
    """Rows of words and numbers under named columns (nearest neighbours, analogies, word
    coordinates): written as `<name>.tsv`, printed as an aligned table; `plot` (optional,
    callable(table, path) -> Path) draws the picture users open."""

    kind: ClassVar[str] = "table"
    columns: list[str]
    rows: list[list[Any]]
    name: str = "table"
    title: str = ""
    plot: Any = None

    def __post_init__(self) -> None:
        bad = next((r for r in self.rows if len(r) != len(self.columns)), None)
        if bad is not None:
            raise ValueError(f"Table: row {bad} does not match columns {self.columns}")

    @staticmethod
    def _cell(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    def to_files(self, out_dir: str | Path) -> list[Path]:
        from .engine.io import write_text

        out = Path(out_dir)
        tsv = out / f"{self.name}.tsv"
        write_text(tsv, "".join("\t".join(self._cell(v) for v in row) + "\n" for row in [self.columns] + self.rows))
        return [tsv] if self.plot is None else [self.plot(self, out / f"{self.name}.png"), tsv]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "title": self.title, "columns": self.columns,
                "rows": self.rows}

    def summary(self) -> str:
        cells = [[self._cell(v) for v in row] for row in [self.columns] + self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
        return "\n".join(([self.title] if self.title else []) + lines)


@dataclass
class WordVectors(Output):
    """Word vectors, written in the word2vec text format (`<name>.txt`: a "count dim" header,
    then one "word v1 v2 ..." line per word) that gensim's KeyedVectors.load_word2vec_format
    and other tools read."""

    kind: ClassVar[str] = "word_vectors"
    words: list[str]
    vectors: np.ndarray
    name: str = "vectors"

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.words):
            raise ValueError(f"WordVectors: {len(self.words)} words but vectors of shape {self.vectors.shape}")

    def to_files(self, out_dir: str | Path) -> list[Path]:
        from .engine.io import write_text

        lines = [f"{len(self.words)} {self.vectors.shape[1]}"]
        lines += [w + " " + " ".join(f"{x:.6f}" for x in v) for w, v in zip(self.words, self.vectors)]
        path = Path(out_dir) / f"{self.name}.txt"
        write_text(path, "\n".join(lines) + "\n")
        return [path]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "words": self.words, "vectors": self.vectors.tolist()}

    def summary(self) -> str:
        return f"{len(self.words)} word vectors of dimension {self.vectors.shape[1]}"


__all__ = ["Output", "Texts", "Images", "Points", "Translations", "Midi", "Bundle", "Table", "WordVectors"]
