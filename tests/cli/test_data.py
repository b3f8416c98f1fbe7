"""`genlab data RECIPE`: every recipe shows what it trains on, through its typed output, without training."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab import api
from genlab.cli import main
from genlab.data.corpus import load_text_corpus
from genlab.data.faces import ATTRIBUTES
from genlab.engine.config import TrainConfig
from genlab.outputs import Images, Points, Texts
from genlab.recipes import REGISTRY
from genlab.recipes.base import Recipe

def examples_shown(printed: str) -> int:
    """How many examples `genlab data` says it shows: "N images ...", "N rows of ...", "N MIDI
    file(s)", one "--- excerpt" header per text, one "  -> " per translation pair."""
    counted = re.match(r"(\d+) (images|rows of|MIDI file)", printed)
    if counted:
        return int(counted.group(1))
    return printed.count("--- excerpt ") or printed.count("\n  -> ")


@pytest.mark.parametrize("recipe", list(REGISTRY))
def test_every_recipe_shows_four_examples_of_its_data(recipe, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["data", recipe, "--n", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert examples_shown(printed) == (8 if recipe == "cyclegan" else 4), printed[:300]   # cyclegan: 4 per domain
    written = [Path(line[len("wrote: "):]) for line in printed.splitlines() if line.startswith("wrote: ")]
    assert written and all(p.parent == out and p.stat().st_size > 0 for p in written), written
    assert sorted(written) == sorted(out.iterdir())   # it says what it wrote, and wrote nothing else
    assert not (tmp_path / "runs").exists()            # no run directory: nothing was trained


def one_line_error(capsys, *args: str) -> str:
    assert main(list(args)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("genlab: error:") and "Traceback" not in err, err
    return err


def test_bad_input_is_one_line(tmp_path, capsys):
    assert "unknown recipe 'nope'" in one_line_error(capsys, "data", "nope")
    assert "not found" in one_line_error(capsys, "data", "gpt", "--data", str(tmp_path / "missing.txt"))
    assert "n must be >= 1" in one_line_error(capsys, "data", "gan-pattern", "--n", "0")
    assert "unknown" in one_line_error(capsys, "data", "gan-pattern", "--set", "no_such_key=1")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert "already holds files" in one_line_error(capsys, "data", "gan-pattern", "--out", str(full))
    assert (full / "keep.txt").read_text() == "mine" and len(list(full.iterdir())) == 1


def test_default_folders_are_numbered_and_never_overwritten(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "gan-pattern", "--n", "10"]) == 0
    first = tmp_path / "runs" / "data" / "gan-pattern-001"
    before = (first / "data.csv").read_text()
    assert main(["data", "gan-pattern", "--n", "20"]) == 0
    assert (first / "data.csv").read_text() == before and len(before.splitlines()) == 11   # header + 10
    assert len((tmp_path / "runs" / "data" / "gan-pattern-002" / "data.csv").read_text().splitlines()) == 21
    # --force writes into a folder that already holds files
    assert main(["data", "gan-pattern", "--n", "5", "--out", str(first), "--force"]) == 0
    assert len((first / "data.csv").read_text().splitlines()) == 6
    capsys.readouterr()


def test_faces_are_captioned_with_their_attributes():
    out = api.show_data("dcgan", n=12)
    assert isinstance(out, Images) and out.images.shape == (12, 32, 32, 3)
    for label in out.labels:   # each caption lists set attributes (one a line) or "-" for none
        assert label == "-" or set(label.split("\n")) <= set(ATTRIBUTES), label
    assert len(set(out.labels)) > 1
    # cgan captions the class it conditions on: one attribute, present or not
    cgan = api.show_data("cgan", n=16, overrides=["attribute=glasses"])
    assert set(cgan.labels) <= {"glasses", "no glasses"} and len(set(cgan.labels)) == 2


def test_classifier_shows_images_with_their_class():
    out = api.show_data("classifier", n=10, overrides={"classes": "0,1"})
    assert isinstance(out, Images) and len(out.images) == 10
    assert set(out.labels) <= {"0", "1"}


def test_text_excerpts_come_from_the_training_part_of_the_corpus(tmp_path):
    out = api.show_data("gpt", n=3)
    text = load_text_corpus(None)
    train = text[:int(len(text) * 0.9)]
    assert isinstance(out, Texts) and len(out.texts) == 3
    for excerpt in out.texts:
        at = train.find(excerpt)
        assert at >= 0 and (at == 0 or train[at - 1] == "\n")   # verbatim, starting at a line
    assert len(set(out.texts)) == 3
    assert out.summary().startswith("--- excerpt 1 of 3: ")
    mine = tmp_path / "mine.txt"
    mine.write_text("".join(f"line {i} of my own text\n" for i in range(200)))
    own = api.show_data("lstm-lm", data=mine, n=2)
    assert own.texts[0].startswith("line 0 of my own text") and "mine.txt" in own.summary()


def test_toy_gan_data_are_the_training_points():
    curve = api.show_data("gan-curve", n=50, overrides={"fn": "x**2", "x_min": 0, "x_max": 3})
    assert isinstance(curve, Points) and curve.values.shape == (50, 2)
    np.testing.assert_allclose(curve.values[:, 1], curve.values[:, 0] ** 2, rtol=1e-4, atol=1e-4)
    numbers = api.show_data("gan-pattern").values[:, 0]   # all of them by default
    assert len(numbers) > 50 and np.all(numbers % 5 == 0)


def test_the_default_describes_a_training_batch():
    """A recipe without its own picture still shows its data: training batch 0, as text."""

    @dataclass
    class Tiny(TrainConfig):
        batch_size: int = 3

    class TinyRecipe(Recipe):
        name = "tiny"
        Config = Tiny

        def build_modules(self):
            return {}

        def batch(self, index):
            return {"x": torch.arange(6.0).view(3, 2) + index}

        def training_step(self, batch, step):
            return {}

        def generate(self, opts):
            raise AssertionError("show_data must not generate")

    out = TinyRecipe(Tiny()).show_data(2)
    assert isinstance(out, Texts) and len(out.texts) == 1
    assert out.texts[0] == "x: torch.float32 (3, 2)\n[0.0, 1.0]\n[2.0, 3.0]"
