"""Face captions: deterministic per (seed, index, variant), every attribute value and hair style named."""
import numpy as np

from genlab.data.captions import HAIR_COLOUR, HAIR_STYLES, WORDS, attribute_prompts, face_captions, prompt_for
from genlab.data.faces import ATTRIBUTES, face_parameters


def words(attribute: str, value: bool) -> list[str]:
    adjectives, phrases = WORDS[attribute][value]
    extra = {("glasses", True): ["sunglasses", "dark glasses"]}.get((attribute, value), [])
    if attribute == "blond":   # "with long blond hair", "with a dark bob"
        extra = [f" {c} hair" for c in HAIR_COLOUR[value]] + [f" {c} bob" for c in HAIR_COLOUR[value]]
    return list(adjectives) + list(phrases) + extra


def test_deterministic_per_seed_index_and_variant():
    a = face_captions([3, 7, 11], seed=2)
    assert a == face_captions([3, 7, 11], seed=2)
    assert face_captions([11], seed=2) == a[2:]               # independent of the other faces asked for
    assert face_captions([3, 7, 11], seed=2, variant=1) != a  # another phrasing
    assert face_captions([3, 7, 11], seed=3) != a


def test_every_attribute_value_and_style_is_named():
    idx = np.arange(300)
    _, attrs = face_parameters(idx)
    params, _ = face_parameters(idx)
    captions = face_captions(idx) + face_captions(idx, variant=1)
    attrs = np.concatenate([attrs, attrs])
    for k, a in enumerate(ATTRIBUTES):
        for value in (False, True):
            rows = np.flatnonzero(attrs[:, k] == value)
            named = [i for i in rows if any(w in captions[i] for w in words(a, value))]
            assert len(named) > 0.8 * len(rows), (a, value)    # named ~90% of the time
    for s, style in enumerate(HAIR_STYLES):
        phrase = {"short": "short", "bob": "bob", "long": "long", "curly": "curly", "bun": "in a bun"}[style]
        assert any(phrase in c for c, st in zip(captions, np.tile(params["hstyle"], 2)) if st == s), style
    assert len(set(captions)) > 0.95 * len(captions)               # varied phrasing
    for extra in ("looking left", "looking right", "lit from the", "background"):
        assert any(extra in c for c in captions), extra


def test_prompts_ask_for_exactly_the_requested_attributes():
    rng = np.random.default_rng(0)
    for value in (False, True):
        p = prompt_for({"glasses": value}, rng)
        assert any(w in p for w in words("glasses", value)) and "hair" not in p and "smil" not in p
    both = {prompt_for({"glasses": True, "blond": True, "smiling": False}, rng) for _ in range(20)}
    assert len(both) > 10                                          # fresh phrasings
    absent, present = attribute_prompts("smiling")
    assert absent and present and not set(absent) & set(present)
