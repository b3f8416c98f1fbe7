"""gan-mlp and dcgan (recipes/image_gans.py on recipes/image_base.ImageGANRecipe). Tiny sizes."""
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


def test_discriminator_learns_real_from_fake(training_recipe):
    r = training_recipe("dcgan", {**TINY, "n_train": 40, "g_width": 8, "d_width": 8, "lr": 2e-3})
    logs = [r.training_step(r.batch(i), i + 1) for i in range(8)]
    assert logs[-1]["d_real"] > logs[-1]["d_fake"]
    assert logs[-1]["d_loss"] < logs[0]["d_loss"]


def test_ema_generator_trails_the_generator_and_is_the_one_sampled(training_recipe):
    r = training_recipe("dcgan", {**TINY, "n_train": 40, "g_width": 8, "d_width": 8, "lr": 2e-3,
                                  "ema_decay": 0.9})
    G, E = r.modules["generator"], r.modules["generator_ema"]
    assert not any(p.requires_grad for p in E.parameters())
    opt_params = {id(p) for o in r.optimizers.values() for g in o.param_groups for p in g["params"]}
    assert not opt_params & {id(p) for p in E.parameters()}
    before = [p.detach().clone() for p in E.parameters()]
    for i in range(3):
        r.training_step(r.batch(i), i + 1)
    for b, e, g in zip(before, E.parameters(), G.parameters()):
        if not torch.equal(b, g):   # moved part of the way from where it was towards the generator
            assert not torch.equal(e, b) and not torch.equal(e, g)
    with r.eval_mode():
        z = r.latents(3, 0)
        torch.testing.assert_close(r.generator_images(z), E(z))


def test_epochs_set_max_steps_once_the_data_is_known(image_folder, tmp_path, training_recipe):
    data = image_folder(tmp_path / "imgs", classes=("x",), n=20, corrupt=False)
    r = training_recipe("dcgan", {**TINY, "data": str(data), "g_width": 8, "d_width": 8, "epochs": 3,
                                  "val_fraction": 0.25})
    assert r.config.max_steps == 3 * 2   # 15 training images, batch 8: 2 steps per epoch
    r.prepare_data()                     # loading data again does not touch max_steps
    assert r.config.max_steps == 6


def test_dcgan_partial_batch_and_interpolation(tmp_path, image_folder):
    # 10 images and batch 8: batches wrap across epochs (never a partial or crashing last batch)
    data = image_folder(tmp_path / "imgs", classes=("x",), corrupt=False)   # 1 held-out image: no FID, no crash
    run = genlab.train("dcgan", data=data, out=tmp_path / "run", progress=False,
                       overrides={**TINY, "g_width": 8, "d_width": 8, "max_steps": 3})
    paths = run.sample(out=tmp_path / "s", mode="interpolate", n=2, steps=4)
    assert [Path(p).name for p in paths] == ["interpolation.png", "interpolation-native.png"]
    from PIL import Image

    (w, h), (nw, nh) = Image.open(paths[0]).size, Image.open(paths[1]).size
    assert nw > nh   # strips: 4 per row, 2 rows
    assert w >= 4 * 64 and h >= 2 * 64   # the picture people open: cells of at least 64 px


def test_gan_mlp_trains_on_embedded_digits(tmp_path, training_recipe):
    r = training_recipe("gan-mlp", {**TINY, "dataset": "digits", "image_size": 28, "channels": 1,
                                    "hidden": [32, 32]})
    logs = [r.training_step(r.batch(i), i + 1) for i in range(3)]
    assert all(np.isfinite(v) for row in logs for v in row.values())
    with r.eval_mode():
        assert r.generate(r.Sample(n=2)).images.shape == (2, 28, 28, 1)
