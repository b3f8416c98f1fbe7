"""Parallel text (sentence pairs) for translation, and token-budget batches over it.

    corpus = load_parallel("multi30k/", src="en", tgt="fr")   # or None: the embedded scenes
    corpus.splits["train"]       # (source lines, target lines), aligned
    corpus.dropped               # {"train": {"empty": 3}, ...}: what was filtered, counted

Accepted layouts (direction by the language keys `src` / `tgt`):
- a folder of aligned files `<split>.<lang>`, plain or `.gz`: `train.en` / `train.fr`,
  `val.*` (or `valid.*`, `dev.*`), and any number of `test*.*` (e.g. `test_2016_flickr.en.gz`);
- two aligned files: the source file `corpus.en` (plain or `.gz`), the target beside it as
  `corpus.fr`;
- a `.tsv` (or `.tsv.gz`) of pairs, one per line: a first line naming the languages
  (`en<TAB>fr`) picks columns by key, otherwise column 1 is the source and column 2 the target.
A folder without a validation split, the two-file and the TSV forms hold out a fixed, seeded
2% (at most 1,000 pairs) each for validation and test. Files of different line counts are an
error; pairs with an empty side are dropped and counted.

Without a path, `scene_corpus` generates English-French pairs from one set of scene
parameters (who, how many, how old, what they wear, what they do, where), with French
gender and number agreement, so nothing needs a file or the network.
"""
from __future__ import annotations

import gzip
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

VAL_NAMES = ("val", "valid", "dev")


@dataclass
class ParallelCorpus:
    src: str
    tgt: str
    splits: dict[str, tuple[list[str], list[str]]]
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    source: str = "embedded scenes"

    @property
    def test_splits(self) -> list[str]:
        return sorted(k for k in self.splits if k.startswith("test"))


def _read_lines(path: Path) -> list[str]:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                text = f.read()
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r").strip() for line in lines]


def _aligned(src_path: Path, tgt_path: Path) -> tuple[list[str], list[str]]:
    a, b = _read_lines(src_path), _read_lines(tgt_path)
    if len(a) != len(b):
        raise DataError(f"misaligned parallel files: {src_path} has {len(a)} lines but {tgt_path} has {len(b)}")
    return a, b


def _drop_empty(pairs: tuple[list[str], list[str]]) -> tuple[tuple[list[str], list[str]], int]:
    keep = [i for i, (s, t) in enumerate(zip(*pairs)) if s and t]
    return ([pairs[0][i] for i in keep], [pairs[1][i] for i in keep]), len(pairs[0]) - len(keep)


def _hold_out(train: tuple[list[str], list[str]], seed: int = 0) -> dict[str, tuple[list[str], list[str]]]:
    n = len(train[0])
    k = min(1000, max(1, n // 50))
    if n < 3 * k + 1:
        raise DataError(f"only {n} sentence pairs: too few to hold out validation and test pairs")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    parts = {"val": order[:k], "test": order[k:2 * k], "train": sorted(order[2 * k:])}
    return {name: ([train[0][i] for i in idx], [train[1][i] for i in idx]) for name, idx in parts.items()}


def _find(folder: Path, split: str, lang: str) -> Path | None:
    for name in (f"{split}.{lang}", f"{split}.{lang}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _from_folder(folder: Path, src: str, tgt: str) -> dict[str, tuple[list[str], list[str]]]:
    splits = {}
    names = {p.name.split(".")[0] for p in folder.iterdir() if p.is_file() and "." in p.name}
    for split in sorted(names):
        s, t = _find(folder, split, src), _find(folder, split, tgt)
        if s is None and t is None:
            continue
        if s is None or t is None:
            raise DataError(f"{folder}: split '{split}' has {'no ' + src if s is None else 'no ' + tgt} file "
                            f"(expected {split}.{src} and {split}.{tgt}, plain or .gz)")
        key = "val" if split in VAL_NAMES else split
        splits[key] = _aligned(s, t)
    if "train" not in splits:
        raise DataError(f"{folder} has no train.{src} / train.{tgt} (plain or .gz)")
    return splits


def _from_tsv(path: Path, src: str, tgt: str) -> tuple[list[str], list[str]]:
    lines = _read_lines(path)
    cols = (0, 1)
    if lines:
        head = [h.strip() for h in lines[0].split("\t")]
        if src in head and tgt in head:
            cols, lines = (head.index(src), head.index(tgt)), lines[1:]
    a, b = [], []
    for n, line in enumerate(lines, 1):
        parts = line.split("\t")
        if len(parts) <= max(cols):
            if not line.strip():
                a.append(""), b.append("")
                continue
            raise DataError(f"{path}, line {n}: expected tab-separated {src} and {tgt} columns, got {line[:60]!r}")
        a.append(parts[cols[0]].strip()), b.append(parts[cols[1]].strip())
    return a, b


def load_parallel(path: str | Path | None, src: str = "en", tgt: str = "fr") -> ParallelCorpus:
    """Read sentence pairs (see the module docstring); None = the embedded scene corpus."""
    if src == tgt:
        raise DataError(f"source and target languages are both '{src}'")
    if not path:
        return scene_corpus(src, tgt)
    p = Path(path).expanduser()
    if p.is_dir():
        splits = _from_folder(p, src, tgt)
        if "val" not in splits:
            held = _hold_out(splits["train"])
            splits["train"], splits["val"] = held["train"], held["val"]
            if not any(k.startswith("test") for k in splits):
                splits["test"] = held["test"]
    elif p.name.endswith((".tsv", ".tsv.gz")) and p.is_file():
        splits = _hold_out(_from_tsv(p, src, tgt))
    else:
        name, gz = (p.name[:-3], ".gz") if p.name.endswith(".gz") else (p.name, "")
        other = p.with_name(name[:-len(src)] + tgt + gz) if name.endswith(f".{src}") else None
        if not p.is_file() or other is None or not other.is_file():
            raise DataError(f"no parallel data at {path}: expected a folder of <split>.{src} / <split>.{tgt} files, "
                            f"a source file NAME.{src} beside NAME.{tgt}, or a .tsv of pairs")
        splits = _hold_out(_aligned(p, other))
    dropped = {}
    for name in list(splits):
        splits[name], empty = _drop_empty(splits[name])
        dropped[name] = {"empty": empty}
        if not splits[name][0]:
            raise DataError(f"split '{name}' of {path} has no sentence pairs with text on both sides")
    return ParallelCorpus(src, tgt, splits, dropped, source=str(p))


# -- token-budget batches -------------------------------------------------------------------------------------------
def token_batches(src_lens: np.ndarray, tgt_lens: np.ndarray, max_tokens: int, seed: int = 0) -> list[np.ndarray]:
    """Group pair indices into batches of similar length, each with at most `max_tokens` tokens of
    padded source plus padded target (a single longer pair gets a batch of its own). Pairs are
    sorted by (target, source) length with a seeded shuffle breaking ties, so the grouping is fixed
    for a corpus and seed: the caller picks batches by number, which keeps a batch a pure function
    of its index."""
    n = len(src_lens)
    tie = np.random.default_rng(seed).permutation(n)
    order = np.lexsort((tie, src_lens, tgt_lens))
    batches, start, s_max, t_max = [], 0, 0, 0
    for i, idx in enumerate(order):
        s_new, t_new = max(s_max, src_lens[idx]), max(t_max, tgt_lens[idx])
        if i > start and (i - start + 1) * (s_new + t_new) > max_tokens:
            batches.append(order[start:i])
            start, s_new, t_new = i, src_lens[idx], tgt_lens[idx]
        s_max, t_max = s_new, t_new
    if n:
        batches.append(order[start:])
    return batches


# -- the embedded bilingual scene corpus ------------------------------------------------------------------------------
# Nouns: English singular/plural, French singular/plural, French gender.
_WHO = [("man", "men", "homme", "hommes", "m"), ("woman", "women", "femme", "femmes", "f"),
        ("boy", "boys", "garçon", "garçons", "m"), ("girl", "girls", "fille", "filles", "f"),
        ("child", "children", "enfant", "enfants", "m"), ("dog", "dogs", "chien", "chiens", "m"),
        ("worker", "workers", "ouvrier", "ouvriers", "m"), ("dancer", "dancers", "danseuse", "danseuses", "f"),
        ("student", "students", "étudiante", "étudiantes", "f"), ("cyclist", "cyclists", "cycliste", "cyclistes", "m")]
# Adjectives placed before the French noun: English, French m sg, f sg, m pl, f pl.
_AGE = [None, ("young", "jeune", "jeune", "jeunes", "jeunes"), ("old", "vieil", "vieille", "vieux", "vieilles"),
        ("little", "petit", "petite", "petits", "petites"), ("tall", "grand", "grande", "grands", "grandes")]
_COUNT = [(1, "A", None), (2, "Two", "Deux"), (3, "Three", "Trois"), (1, "A", None), (4, "Four", "Quatre")]
# Clothes: English, French noun, gender. Colours: English, French m, f.
_CLOTHES = [("shirt", "chemise", "f"), ("hat", "chapeau", "m"), ("jacket", "veste", "f"), ("coat", "manteau", "m"),
            ("dress", "robe", "f"), ("helmet", "casque", "m"), ("scarf", "écharpe", "f")]
_COLOURS = [("red", "rouge", "rouge"), ("blue", "bleu", "bleue"), ("green", "vert", "verte"),
            ("black", "noir", "noire"), ("white", "blanc", "blanche"), ("yellow", "jaune", "jaune"),
            ("grey", "gris", "grise"), ("orange", "orange", "orange")]
# Actions: English singular, English plural, French singular, French plural.
_DOING = [("is riding a bike", "are riding bikes", "fait du vélo", "font du vélo"),
          ("is walking", "are walking", "marche", "marchent"),
          ("is running", "are running", "court", "courent"),
          ("is reading a book", "are reading books", "lit un livre", "lisent des livres"),
          ("is playing football", "are playing football", "joue au football", "jouent au football"),
          ("is eating an apple", "are eating apples", "mange une pomme", "mangent des pommes"),
          ("is sitting", "are sitting", "est assis", "sont assis"),
          ("is waiting", "are waiting", "attend", "attendent"),
          ("is singing", "are singing", "chante", "chantent"),
          ("is looking at the sky", "are looking at the sky", "regarde le ciel", "regardent le ciel"),
          ("is carrying a bag", "are carrying bags", "porte un sac", "portent des sacs"),
          ("is painting a wall", "are painting a wall", "peint un mur", "peignent un mur")]
_WHERE = [("in the park", "dans le parc"), ("on the beach", "sur la plage"), ("in the street", "dans la rue"),
          ("near the river", "près de la rivière"), ("in front of a building", "devant un bâtiment"),
          ("in the snow", "dans la neige"), ("at the market", "au marché"), ("on a bridge", "sur un pont"),
          ("in the garden", "dans le jardin"), ("next to a car", "à côté d'une voiture"),
          ("under a tree", "sous un arbre"), ("in the kitchen", "dans la cuisine")]


def _clause(rng: random.Random) -> tuple[str, str]:
    """Who (how many, how old, wearing what) does what, in English and in French."""
    n, en_det, fr_num = rng.choice(_COUNT)
    who_en, who_en_pl, who_fr, who_fr_pl, gender = rng.choice(_WHO)
    age = rng.choice(_AGE)
    plural = n > 1
    fem = gender == "f"
    noun_en, noun_fr = (who_en_pl, who_fr_pl) if plural else (who_en, who_fr)
    if age is None:
        adj_en, adj_fr = "", ""
    else:
        adj_en = age[0] + " "
        adj_fr = age[1 + 2 * plural + fem] + " "
        if age[0] == "old" and not plural and not fem and noun_fr[0] not in "aeiouéh":
            adj_fr = "vieux "  # "vieil" only before a vowel
    if plural:
        en = f"{en_det} {adj_en}{noun_en}"
        fr = f"{fr_num} {adj_fr}{noun_fr}"
    else:
        article = "An" if (adj_en or noun_en)[0] in "aeiou" else "A"
        en = f"{article} {adj_en}{noun_en}"
        fr = f"{'Une' if fem else 'Un'} {adj_fr}{noun_fr}"
    if rng.random() < 0.6 and noun_en not in ("dog", "dogs"):
        cloth_en, cloth_fr, cg = rng.choice(_CLOTHES)
        col_en, col_m, col_f = rng.choice(_COLOURS)
        col_fr = col_f if cg == "f" else col_m
        art_fr = "une" if cg == "f" else "un"
        en += f" in {'an' if col_en[0] in 'aeiou' else 'a'} {col_en} {cloth_en}"
        # French says it two ways and the English does not tell which: BLEU stays below 100.
        fr += f" {rng.choice(('avec', 'portant'))} {art_fr} {cloth_fr} {col_fr}"
    doing = rng.choice(_DOING)
    verb_fr = doing[3] if plural else doing[2]
    if verb_fr.endswith("assis"):  # the participle agrees: assis, assise, assises
        verb_fr = verb_fr.replace("assis", "assis" + ("e" if fem else "") + ("s" if fem and plural else ""))
    return en + " " + (doing[1] if plural else doing[0]), fr + " " + verb_fr


def _scene(rng: random.Random) -> tuple[str, str]:
    """One scene drawn from the parameters above; a third of them add a second group ("while ...")."""
    en, fr = _clause(rng)
    where_en, where_fr = rng.choice(_WHERE)
    en, fr = f"{en} {where_en}", f"{fr} {where_fr}"
    if rng.random() < 0.35:
        en2, fr2 = _clause(rng)
        en += " while " + en2[0].lower() + en2[1:]
        conj = rng.choice(("pendant que", "tandis que"))
        fr2 = fr2[0].lower() + fr2[1:]
        fr += f" {conj[:-1]}'{fr2}" if fr2[0] in "aeiou" else f" {conj} {fr2}"  # qu'un, qu'une
    return en + ".", fr + "."


def scene_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [_scene(rng) for _ in range(n)]


def scene_corpus(src: str = "en", tgt: str = "fr", n_train: int = 20000, n_held: int = 500) -> ParallelCorpus:
    """English-French scene descriptions: train, val and test with no sentence shared between them."""
    if {src, tgt} != {"en", "fr"}:
        raise DataError(f"the embedded corpus is English-French; got src={src}, tgt={tgt} (pass --data for others)")
    rng, seen, unique = random.Random(1234), set(), []
    for _ in range(20 * (n_train + 2 * n_held)):  # the grammar has millions of scenes; this never runs out
        en, fr = _scene(rng)
        if en not in seen:
            seen.add(en)
            unique.append((en, fr) if src == "en" else (fr, en))
            if len(unique) == n_train + 2 * n_held:
                break
    else:
        raise DataError("the scene grammar produced too few distinct sentences")
    held, train = unique[:2 * n_held], unique[2 * n_held:2 * n_held + n_train]
    cols = lambda pairs: ([p[0] for p in pairs], [p[1] for p in pairs])  # noqa: E731
    splits = {"train": cols(train), "val": cols(held[:n_held]), "test": cols(held[n_held:])}
    return ParallelCorpus(src, tgt, splits, {k: {"empty": 0} for k in splits})
