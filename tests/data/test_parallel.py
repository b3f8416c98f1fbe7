"""Parallel text: layouts, alignment errors, filtering, the scene corpus, token-budget batches."""
import gzip

import numpy as np
import pytest

from genlab.data.parallel import load_parallel, scene_corpus, scene_pairs, token_batches
from genlab.errors import DataError

PAIRS = [(f"sentence number {i} .", f"phrase numéro {i} .") for i in range(200)]


def write(path, lines, gz=False):
    text = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def test_folder_layout_with_gz_and_direction_by_keys(tmp_path):
    en, fr = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    write(tmp_path / "train.en.gz", en[:150], gz=True)
    write(tmp_path / "train.fr.gz", fr[:150], gz=True)
    write(tmp_path / "val.en", en[150:170])
    write(tmp_path / "val.fr", fr[150:170])
    write(tmp_path / "test_2016_flickr.en", en[170:])
    write(tmp_path / "test_2016_flickr.fr", fr[170:])
    c = load_parallel(tmp_path, "en", "fr")
    assert sorted(c.splits) == ["test_2016_flickr", "train", "val"] and c.test_splits == ["test_2016_flickr"]
    assert c.splits["train"][0][3] == en[3] and c.splits["train"][1][3] == fr[3]
    back = load_parallel(tmp_path, "fr", "en")
    assert back.splits["val"] == (fr[150:170], en[150:170])


def test_misaligned_files_are_a_clear_error(tmp_path):
    write(tmp_path / "train.en", ["a", "b", "c"])
    write(tmp_path / "train.fr", ["a", "b"])
    with pytest.raises(DataError, match="misaligned.*3 lines.*2"):
        load_parallel(tmp_path, "en", "fr")
    with pytest.raises(DataError, match="no fr"):
        (tmp_path / "train.fr").unlink()
        load_parallel(tmp_path, "en", "fr")


def test_two_aligned_files_drop_empty_pairs_and_hold_out_splits(tmp_path):
    en, fr = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    en[5], fr[9] = "", ""
    write(tmp_path / "corpus.en", en)
    write(tmp_path / "corpus.fr", fr)
    c = load_parallel(tmp_path / "corpus.en", "en", "fr")
    total = sum(len(s[0]) + d["empty"] for s, d in zip(c.splits.values(), c.dropped.values()))
    assert total == 200 and sum(d["empty"] for d in c.dropped.values()) == 2
    assert len(c.splits["val"][0]) == 4 and len(c.splits["test"][0]) == 4
    assert not set(c.splits["val"][0]) & set(c.splits["train"][0])
    for s, t in zip(*c.splits["train"]):
        assert s.split()[2] == t.split()[2]  # still aligned


def test_tsv_with_a_header_picks_columns_by_key(tmp_path):
    path = tmp_path / "pairs.tsv"
    write(path, ["fr\ten"] + [f"{f}\t{e}" for e, f in PAIRS])
    c = load_parallel(path, "en", "fr")
    assert all(s.startswith("sentence") and t.startswith("phrase") for s, t in zip(*c.splits["train"]))
    write(path, ["only one column"])
    with pytest.raises(DataError, match="tab-separated"):
        load_parallel(path, "en", "fr")


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no parallel data"):
        load_parallel(tmp_path / "nothing", "en", "fr")


def test_scene_corpus_is_varied_agrees_and_keeps_splits_apart():
    c = scene_corpus(n_train=3000, n_held=200)
    train, val, test = (set(c.splits[k][0]) for k in ("train", "val", "test"))
    assert len(train) == 3000 and not (train & val) and not (train & test) and not (val & test)
    pairs = dict(scene_pairs(20000, seed=7))
    assert len(pairs) > 18000  # thousands of distinct scenes
    girls = [f for e, f in pairs.items() if e.startswith("A little girl") and "is sitting" in e and "while" not in e]
    assert len(girls) >= 2 and all(f.startswith("Une petite fille") and " est assise " in f for f in girls)
    fem = [f for e, f in pairs.items() if e.startswith("Two old women") and " while " not in e]
    assert fem and all(f.startswith("Deux vieilles femmes") for f in fem)
    with pytest.raises(DataError, match="English-French"):
        scene_corpus("en", "de")


def test_token_batches_respect_the_budget_cover_every_pair_once_and_are_fixed():
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(3, 40, 500), rng.integers(3, 40, 500)
    batches = token_batches(src, tgt, max_tokens=400, seed=1)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    for b in batches:
        assert len(b) * (src[b].max() + tgt[b].max()) <= 400
    # similar lengths together: far less padding than random batches of the same sizes
    padded = sum(len(b) * tgt[b].max() for b in batches)
    shuffled = rng.permutation(500)
    sizes = np.cumsum([len(b) for b in batches])[:-1]
    random_padded = sum(len(b) * tgt[b].max() for b in np.split(shuffled, sizes))
    assert padded < 0.8 * random_padded
    again = token_batches(src, tgt, max_tokens=400, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert len(token_batches(np.array([90]), np.array([90]), max_tokens=100)) == 1  # one long pair alone
