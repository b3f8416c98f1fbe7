"""cgan: the conditional WGAN-GP recipe. Tiny sizes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.errors import ConfigError

pytestmark = pytest.mark.usefixtures("quick_feature_nets")
TINY = {"device": "cpu", "max_steps": 4, "batch_size": 8, "save_every": 0, "log_every": 2, "eval_samples": 16,
        "image_size": 16, "latent_dim": 8}


def test_cgan_critic_steps_and_label_conditioning(tmp_path, image_folder, training_recipe):
    data = image_folder(tmp_path / "imgs", corrupt=False)
    r = training_recipe("cgan", {**TINY, "data": str(data), "g_width": 8, "d_width": 8, "n_critic": 2, "lr": 1e-3})
    assert r.label_names == ["a", "b"]
    logs = [r.training_step(r.batch(i), i + 1) for i in range(6)]
    assert logs[-1]["w_distance"] > logs[0]["w_distance"]   # the critic learns to separate
    assert all(np.isfinite(v) for row in logs for v in row.values())
    with r.eval_mode():
        z = r.latents(4, 0)
        x0 = r.generator_images(z, r.one_hot(torch.zeros(4)))
        x1 = r.generator_images(z, r.one_hot(torch.ones(4)))
    assert (x0 - x1).abs().mean() > 1e-3    # the label changes the image
    with pytest.raises(ConfigError):
        r.check_label(2)


def test_cgan_attribute_scores_follow_the_judge_and_fail_non_faces(monkeypatch, training_recipe):
    """cgan's attribute_acc is the judge's verdict on the requested label, a non-face a failure."""
    from genlab.data.faces import ATTRIBUTES
    from genlab.metrics.feature_net import AttributeClassifier

    r = training_recipe("cgan", {**TINY, "g_width": 8, "d_width": 8, "n_train": 64, "eval_samples": 10})
    glasses = ATTRIBUTES.index("glasses")

    def verdict(face: float):   # every image: glasses (only), on a face or not
        def f(self, x):
            p = np.zeros((len(x), len(self.attributes)))
            p[:, glasses] = 1.0
            return np.full(len(x), face), p
        return f

    monkeypatch.setattr(AttributeClassifier, "_verdicts", verdict(1.0))
    with r.eval_mode():
        m = r.evaluate()
    assert (m["attribute_acc_label0"], m["attribute_acc_label1"], m["attribute_acc"]) == (0.0, 1.0, 0.5)
    assert m["face_rate"] == 1.0 and m["n_fake"] == 10 and "fid_floor" in m
    monkeypatch.setattr(AttributeClassifier, "_verdicts", verdict(0.0))
    with r.eval_mode():
        m = r.evaluate()
    assert (m["attribute_acc_label1"], m["attribute_acc"], m["face_rate"]) == (0.0, 0.0, 0.0)


def test_cgan_rejects_batch_norm_critic_and_accumulation():
    from genlab.api import build_config
    from genlab.recipes.cgan import CGANRecipe

    for bad in ({"critic_norm": "batch"}, {"grad_accum": 2}, {"image_size": 24}):
        with pytest.raises(ConfigError):
            build_config(CGANRecipe, overrides=bad)


def test_train_on_folder_with_corrupt_file_then_sample_modes(tmp_path, capsys, image_folder):
    data = image_folder(tmp_path / "imgs")
    run = genlab.train("cgan", data=data, out=tmp_path / "run", progress=False,
                       overrides={**TINY, "g_width": 8, "d_width": 8, "n_critic": 1, "batch_size": 6,
                                  "val_fraction": 0.25, "ema_decay": 0.99})
    assert "skipped 1 unreadable" in capsys.readouterr().err
    assert np.isfinite(run.evaluate()["fid"])
    loaded = genlab.load(tmp_path / "run", device="cpu")
    expect = {"grid": ["samples.png"], "label": ["label-1.png"], "arithmetic": ["arithmetic.png"],
              "interpolate": ["label-interpolation.png", "latent-interpolation.png", "interpolation-grid.png"]}
    for mode, names in expect.items():
        paths = loaded.sample(out=tmp_path / mode, mode=mode, n=3, steps=3)
        both = [f for name in names for f in (name, name.replace(".png", "-native.png"))]
        assert [Path(p).name for p in paths] == both and all(Path(p).stat().st_size > 0 for p in paths)
    out = loaded.sample(n=5, mode="label", label=0)
    assert out.images.shape == (5, 16, 16, 3) and out.images.dtype == np.uint8
    grid = loaded.sample(n=4)   # one row per label, the same latents in every row
    assert grid.row_labels == ["0: a", "1: b"] and grid.ncol == 4 and len(grid.images) == 8
