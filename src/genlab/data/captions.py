"""Captions for the procedural faces, written from their drawing parameters.

A caption names the three binary attributes (glasses, blond, smiling), mostly explicitly
("without glasses", "black-haired"), and a few of the continuous properties: hair style,
sunglasses, where the eyes look, head tilt, background colour and light direction. Phrasing,
word order and which properties are mentioned vary, so a text model learns the words rather
than one template:

    "a portrait of a smiling blond person with glasses, looking left, lit from the right"
    "someone with long black hair and no glasses, not smiling, on a green background"

The faces have no sex; "man" and "woman" are drawn at random like "person" and "face",
so they carry no information and prompts with them still work.

`face_captions(indices, seed, variant)` is deterministic per (seed, index, variant): one face
gets a different phrasing for each variant. `prompt_for(attributes, rng)` phrases a request
for some attributes only (what prompt-following measures ask a text-to-image model).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .faces import ATTRIBUTES, face_parameters

CAPTION_STREAM = 7919     # separates the caption random stream from the drawing's
P_ATTRIBUTE = 0.9         # each binary attribute is named this often
# Each continuous property (hair style, gaze, tilt, background, light) is named this often. Rarely
# enough that most captions are about the attributes: a contrastive model learns first what tells
# captions apart most easily, and at 0.35 background colours, hair styles and gaze kept the smile
# (a few pixels at 16 px) unlearned in short runs (BENCHMARKS.md, text to image).
P_PROPERTY = 0.15
HAIR_STYLES = ("short", "bob", "long", "curly", "bun")

NOUNS = ("person", "face", "man", "woman", "someone", "individual")
FRAMES = ("{}", "{}", "a photo of {}", "a portrait of {}", "a picture of {}", "a drawing of {}")
# (adjectives, phrases) when the attribute is present / absent
WORDS: dict[str, dict[bool, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "glasses": {True: ((), ("with glasses", "wearing glasses", "in glasses", "with spectacles")),
                False: ((), ("without glasses", "with no glasses", "not wearing glasses", "without spectacles"))},
    "blond": {True: (("blond", "fair-haired", "blonde"), ("with blond hair", "with fair hair", "with golden hair")),
              False: (("dark-haired", "black-haired"), ("with black hair", "with dark hair"))},
    "smiling": {True: (("smiling", "grinning", "happy"), ("with a smile", "smiling", "with a big grin")),
                False: (("serious", "unsmiling"), ("not smiling", "with a straight face", "without a smile"))},
}
HAIR_COLOUR = {True: ("blond", "fair", "golden"), False: ("black", "dark")}
STYLE_PHRASE = {"short": "with short {} hair", "bob": "with a {} bob", "long": "with long {} hair",
                "curly": "with curly {} hair", "bun": "with {} hair in a bun"}


def _colour_name(rgb: np.ndarray) -> str:
    """A plain colour word for an RGB triple in [0, 1]."""
    r, g, b = (float(v) for v in rgb)
    hi, lo = max(r, g, b), min(r, g, b)
    if hi < 0.25:
        return "dark"
    if hi - lo < 0.12 * hi + 0.02:
        return "grey"
    if hi == r:
        h = ((g - b) / (hi - lo)) % 6
    elif hi == g:
        h = (b - r) / (hi - lo) + 2
    else:
        h = (r - g) / (hi - lo) + 4
    h *= 60
    for edge, name in ((20, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "teal"),
                       (260, "blue"), (300, "purple"), (340, "pink"), (360, "red")):
        if h < edge:
            return name
    return "red"


def _extras(p: dict[str, np.ndarray], i: int) -> list[str]:
    """Phrases for the continuous properties of face i that are clear enough to name."""
    out = []
    if p["gx"][i] < -0.015:
        out.append("looking left")
    elif p["gx"][i] > 0.015:
        out.append("looking right")
    if p["rot"][i] > 0.12:
        out.append("with the head tilted right")
    elif p["rot"][i] < -0.12:
        out.append("with the head tilted left")
    bg = (p["bg1"][i] + p["bg2"][i]) / 2
    out.append(f"on a {_colour_name(bg)} background")
    if abs(p["lx"][i]) > 0.35:
        out.append("lit from the " + ("right" if p["lx"][i] > 0 else "left"))
    return out


def _article(words: str) -> str:
    return ("an " if words[0] in "aeiou" else "a ") + words


def compose(attributes: dict[str, bool], rng: np.random.Generator, style: str = "", sunglasses: bool = False,
            extras: Sequence[str] = ()) -> str:
    """One phrasing of a face with the given attributes (any subset of ATTRIBUTES), hair style,
    sunglasses and extra phrases, in a random order and wording."""
    adjectives, phrases = [], []
    for name in ATTRIBUTES:
        if name not in attributes:
            continue
        value = bool(attributes[name])
        if name == "blond" and style:        # colour and style go together: "with long blond hair"
            colour = str(rng.choice(HAIR_COLOUR[value]))
            phrases.append(STYLE_PHRASE[style].format(colour))
            continue
        if name == "glasses" and value and sunglasses and rng.random() < 0.7:
            phrases.append(str(rng.choice(("with sunglasses", "wearing sunglasses", "in dark glasses"))))
            continue
        adj, phr = WORDS[name][value]
        if adj and rng.random() < 0.5:
            adjectives.append(str(rng.choice(adj)))
        else:
            phrases.append(str(rng.choice(phr)))
    if style and "blond" not in attributes:
        phrases.append(STYLE_PHRASE[style].replace(" {}", ""))
    phrases += list(extras)
    rng.shuffle(adjectives)
    rng.shuffle(phrases)
    noun = str(rng.choice(NOUNS))
    head = " ".join(adjectives + [noun]) if noun != "someone" else noun
    if noun == "someone" and adjectives:      # "someone" takes no adjectives before it
        phrases.insert(0, " and ".join(adjectives))
    head = head if noun == "someone" else _article(head)
    if len(phrases) > 1 and rng.random() < 0.5:
        tail = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    else:
        tail = ", ".join(phrases)
    text = head + (" " + tail if tail else "")
    return str(rng.choice(FRAMES)).format(text)


def face_captions(indices: Sequence[int] | np.ndarray, seed: int = 0, variant: int = 0,
                  attributes: dict[str, np.ndarray | bool] | None = None) -> list[str]:
    """A caption for each of faces `indices` of `seed` (the faces of data.faces): deterministic
    per (seed, index, variant). Each binary attribute is named with probability P_ATTRIBUTE (0.9);
    hair style, gaze, tilt, background and light each with probability P_PROPERTY (0.15).
    `attributes` forces attributes as data.faces.render_faces does (a face's twin with one
    attribute switched gets the same draws of what to name)."""
    idx = np.asarray(indices, dtype=np.int64)
    p, attrs = face_parameters(idx, seed=seed, attributes=attributes)
    out = []
    for row, index in enumerate(idx):
        rng = np.random.default_rng([seed, int(index), variant, CAPTION_STREAM])
        named = {a: bool(attrs[row, k]) for k, a in enumerate(ATTRIBUTES) if rng.random() < P_ATTRIBUTE}
        style = HAIR_STYLES[int(p["hstyle"][row])] if rng.random() < P_PROPERTY else ""
        extras = [e for e in _extras(p, row) if rng.random() < P_PROPERTY]
        out.append(compose(named, rng, style=style, sunglasses=bool(p["gsun"][row]), extras=extras))
    return out


def prompt_for(attributes: dict[str, bool], rng: np.random.Generator) -> str:
    """A fresh phrasing that asks for exactly these attributes (nothing else)."""
    return compose(attributes, rng)


def attribute_prompts(attribute: str) -> tuple[list[str], list[str]]:
    """Zero-shot prompts (absent, present) for one attribute: every wording of WORDS on "a face"
    (their embeddings are averaged: CLIP's prompt ensembling)."""
    def wordings(value: bool) -> list[str]:
        adjectives, phrases = WORDS[attribute][value]
        return [_article(f"{a} face") for a in adjectives] + [f"a face {p}" for p in phrases]
    return wordings(False), wordings(True)


def load_captioned_folder(path: str | Path, size: int, channels: int, max_images: int = 0
                          ) -> tuple[np.ndarray, list[str]]:
    """Images (uint8 (N, size, size, channels)) and their captions from a folder: either a
    `captions.tsv` at its top (one `relative/path.png<TAB>caption` per line) or a `NAME.txt`
    beside each image `NAME.png` holding its caption. Images without a caption are skipped."""
    from ..errors import DataError
    from .images import _list_images, _load_one

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"captioned image folder not found: {root}")
    table = root / "captions.tsv"
    pairs: list[tuple[Path, str]] = []
    if table.is_file():
        for n, line in enumerate(table.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            name, sep, caption = line.partition("\t")
            if not sep or not caption.strip():
                raise DataError(f"{table}:{n}: expected 'path<TAB>caption'")
            pairs.append((root / name.strip(), caption.strip()))
    else:
        for f in _list_images(root):
            txt = f.with_suffix(".txt")
            if txt.is_file() and txt.read_text(encoding="utf-8").strip():
                pairs.append((f, " ".join(txt.read_text(encoding="utf-8").split())))
    if max_images:
        pairs = pairs[:max_images]
    images, captions = [], []
    for f, caption in pairs:
        try:
            images.append(_load_one(f, size, channels))
        except Exception:
            continue    # unreadable images are skipped, as in every image folder
        captions.append(caption)
    if len(images) < 2:
        raise DataError(f"need at least 2 captioned images in {root} (a captions.tsv or NAME.txt beside "
                        f"each image), found {len(images)}")
    return np.stack(images), captions


__all__ = ["HAIR_STYLES", "P_ATTRIBUTE", "P_PROPERTY", "WORDS", "attribute_prompts", "compose", "face_captions", "load_captioned_folder",
           "prompt_for"]
