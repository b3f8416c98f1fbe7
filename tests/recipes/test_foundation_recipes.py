"""The first recipes learn: metrics beat an untrained model's, on embedded data and on users' files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import genlab


def untrained(recipe: str, tmp_path, **overrides):
    """A run after one step: as good as untrained, same code path for the metrics."""
    return genlab.train(recipe, overrides={"max_steps": 1, "eval_every": 0, **overrides}, out=tmp_path / "u",
                        progress=False)


def test_gan_curve_beats_untrained(tmp_path):
    base = untrained("gan-curve", tmp_path).evaluate()
    run = genlab.train("gan-curve", overrides={"max_steps": 400, "eval_every": 100}, out=tmp_path / "t",
                       progress=False)
    m = genlab.load(run.path).evaluate()
    assert m["mse"] < 0.2 * base["mse"]
    assert m["x_coverage"] >= 0.9


def test_gan_curve_user_points(tmp_path):
    xs = np.linspace(-3, 3, 400)
    (tmp_path / "pts.csv").write_text("x,y\n" + "".join(f"{x},{np.sin(x)}\n" for x in xs))
    run = genlab.train("gan-curve", data=tmp_path / "pts.csv", overrides={"max_steps": 20, "eval_every": 10},
                       out=tmp_path / "r", progress=False)
    assert run.evaluate()["mse"] >= 0
    pts = genlab.load(run.path).sample(n=7)
    assert pts.columns == ["x", "y"] and pts.values.shape == (7, 2)
    assert [p.name for p in pts.to_files(tmp_path / "s")] == ["points.png", "points.csv"]


def test_gan_pattern_learns_all_valid_numbers(tmp_path):
    base = untrained("gan-pattern", tmp_path).evaluate()
    assert base["valid_share"] < 0.5
    run = genlab.train("gan-pattern", overrides={"max_steps": 300, "eval_every": 100}, out=tmp_path / "t",
                       progress=False)
    m = genlab.load(run.path).evaluate()
    assert m["valid_share"] >= 0.95 and m["coverage"] == 1.0


def test_classifier_mlp_and_binary(tmp_path):
    run = genlab.train("classifier", overrides={"arch": "mlp", "max_steps": 150, "eval_every": 0},
                       out=tmp_path / "mlp", progress=False)
    m = run.evaluate()
    assert m["accuracy"] > m["majority_baseline"] + 0.6
    binary = genlab.train("classifier", overrides={"arch": "mlp", "classes": "0,1", "dropout": 0.25,
                                                   "max_steps": 60, "eval_every": 0},
                          out=tmp_path / "bin", progress=False)
    assert binary.recipe.modules["model"].net[-1].out_features == 1  # one logit, no dropout after it
    assert binary.evaluate()["accuracy"] > 0.95


def test_classifier_on_image_folder_skips_corrupt_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        d = tmp_path / "imgs" / label
        d.mkdir(parents=True)
        for i in range(12):
            arr = np.clip(np.array(colour) + rng.normal(0, 20, (20 + i, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{i}.png")
    (tmp_path / "imgs" / "red" / "broken.png").write_bytes(b"\x89PNG not really")
    run = genlab.train("classifier", data=tmp_path / "imgs",
                       overrides={"channels": 3, "image_size": 16, "max_steps": 40, "eval_every": 0,
                                  "val_fraction": 0.25},
                       out=tmp_path / "run", progress=False)
    assert "skipped 1" in capsys.readouterr().err
    assert run.evaluate()["accuracy"] == 1.0


def test_fashion_mnist_missing_is_a_clear_error(tmp_path, monkeypatch):
    from genlab.data import idx

    monkeypatch.setattr(idx, "FASHION_MNIST_DIRS", [str(tmp_path / "none")])
    with pytest.raises(genlab.GenlabError, match="fashion-mnist"):
        genlab.train("classifier", overrides={"dataset": "fashion-mnist"}, out=tmp_path / "f", progress=False)


def test_toy_gans_refuse_grad_accum(tmp_path):
    # D and G step in turn: accumulating gradients over micro-batches would mix the two updates
    for name in ("gan-curve", "gan-pattern"):
        with pytest.raises(genlab.GenlabError, match="grad_accum"):
            genlab.train(name, overrides={"max_steps": 2, "grad_accum": 2}, out=tmp_path / name, progress=False)
        assert not (tmp_path / name / "model.safetensors").exists()
