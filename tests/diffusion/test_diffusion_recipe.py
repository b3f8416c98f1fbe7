"""The diffusion recipe end to end on tiny digits: train, files, EMA, sampling, guidance, eval."""
import numpy as np
import pytest
import torch

import genlab
from genlab.errors import ConfigError
from genlab.metrics import feature_net

TINY = {"dataset": "digits", "image_size": 8, "channels": 1, "unet_channels": [8, 16],
        "attention_resolutions": [4], "head_channels": 8, "groups": 4, "timesteps": 100,
        "max_steps": 12, "batch_size": 16, "warmup_steps": 2, "eval_samples": 16, "eval_steps": 4,
        "save_every": 0, "log_every": 4}


@pytest.fixture
def quick_metrics(monkeypatch, tmp_path):
    """Feature nets trained for a few steps in a private cache (the real ones take a minute)."""
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    real = feature_net.get_feature_net
    monkeypatch.setattr(feature_net, "get_feature_net", lambda d, s, c, steps=None, robust=False: real(d, s, c, steps=20, robust=robust))


def test_unconditional_train_sample_eval(tmp_path, quick_metrics):
    run = genlab.train("diffusion", overrides=TINY, out=tmp_path / "run", progress=False)
    files = {p.name for p in run.result["samples"]}
    pictures = {"samples", "reverse_process", "forward_process"}   # each also at native size
    assert files == {f"{p}.png" for p in pictures} | {f"{p}-native.png" for p in pictures}
    ema, unet = run.recipe.modules["ema"], run.recipe.modules["unet"]
    assert not any(p.requires_grad for p in ema.parameters())
    assert not torch.equal(ema.conv_in.weight, unet.conv_in.weight)   # an average, not a copy

    loaded = genlab.load(tmp_path / "run", device="cpu")
    torch.testing.assert_close(loaded.recipe.modules["ema"].conv_in.weight, ema.conv_in.weight)
    a = loaded.sample(n=3, seed=5, sampler="ddim", steps=5).parts["samples"].images
    b = loaded.sample(n=3, seed=5, sampler="ddim", steps=5).parts["samples"].images
    c = loaded.sample(n=3, seed=5, sampler="ddpm", steps=10).parts["samples"].images
    assert a.shape == (3, 8, 8, 1) and a.dtype == np.uint8 and np.array_equal(a, b) and not np.array_equal(a, c)
    strip = loaded.sample(n=3, seed=5, steps=5, strip=4).parts["reverse_process"]
    assert strip.ncol == 4 and strip.col_labels[-1] == "sample" and len(strip.images) == 3 * 4
    m = loaded.evaluate()
    assert {"val_loss", "fid", "kid", "precision", "recall", "sec_per_image"} <= set(m)
    with pytest.raises(ConfigError):
        loaded.sample(n=2, label="3")     # unconditional model
    with pytest.raises(ConfigError):
        loaded.sample(n=2, steps=101)


def test_conditional_guidance_and_labels(tmp_path, quick_metrics):
    run = genlab.train("diffusion", overrides={**TINY, "conditional": True, "p_uncond": 0.2},
                       out=tmp_path / "run", progress=False)
    r = run.recipe
    assert r.class_names == [str(i) for i in range(10)]
    assert r.modules["unet"].class_emb.num_embeddings == 11        # 10 digits + the null class
    out = run.sample(n=4, seed=1, label="3", steps=4, guidance=2.0).parts["samples"]
    assert out.labels == ["3", "3", "3", "3"] and "guidance 2" in out.title
    cond = run.sample(n=4, seed=1, label="3", steps=4, guidance=1.0).parts["samples"].images
    uncond = run.sample(n=4, seed=1, label="3", steps=4, guidance=0.0).parts["samples"].images
    assert not np.array_equal(cond, uncond)
    m = run.evaluate()
    assert m["n_fake"] == TINY["eval_samples"] and m["n_floor"] == TINY["eval_samples"]
    # label_accuracy asks the digits network whether an image shows the requested label:
    # real held-out digits score far higher with their own labels than with wrong ones
    x, y = r.val_x[:300], r.val_y[:300]
    right, wrong = r.label_accuracy(x, y)["label_accuracy"], r.label_accuracy(x, (y + 1) % 10)["label_accuracy"]
    assert right > wrong + 0.3
    loaded = genlab.load(tmp_path / "run", device="cpu")               # classes come back from classes.json
    assert loaded.recipe.class_names == r.class_names
    assert np.array_equal(loaded.sample(n=4, seed=1, label="3", steps=4, guidance=1.0).parts["samples"].images,
                          cond)


def test_config_errors(tmp_path):
    for bad in ({"prediction": "noise"}, {"loss": "l3"}, {"image_size": 10, "unet_channels": [8, 16, 32]}, {"p_uncond": 1.0}):
        with pytest.raises(ConfigError):
            genlab.train("diffusion", overrides={**TINY, **bad}, out=tmp_path / "bad", progress=False)
    with pytest.raises(ConfigError):
        genlab.train("diffusion", overrides={**TINY, "dataset": "faces", "image_size": 16, "n_train": 40,
                                             "conditional": True, "attribute": "hat"},
                     out=tmp_path / "bad2", progress=False)
