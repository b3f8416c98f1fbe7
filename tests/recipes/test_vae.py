"""vae: the convolutional VAE (models/autoencoder.ConvVAE, recipes/vae.py). Tiny sizes."""
import math

import numpy as np
import pytest
import torch

import genlab
from genlab.models.autoencoder import ConvVAE, VAEConfig, kl_divergence, reconstruction_nll

TINY = {"image_size": 8, "eval_every": 0, "save_every": 0, "log_every": 5, "batch_size": 32}


def test_kl_matches_closed_form_and_torch():
    mu = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
    logvar = torch.tensor([[math.log(0.25), math.log(4.0)], [0.0, 0.0]])
    # closed form per dim: 0.5 * (var + mu^2 - 1 - log var)
    expected0 = 0.5 * ((0.25 + 0.25 - 1 - math.log(0.25)) + (4.0 + 1.0 - 1 - math.log(4.0)))
    kl = kl_divergence(mu, logvar)
    assert kl[0].item() == pytest.approx(expected0, rel=1e-6) and kl[1].item() == pytest.approx(0.0, abs=1e-7)
    mu, logvar = torch.randn(16, 5), torch.randn(16, 5)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(5), torch.ones(5))
    ref = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(kl_divergence(mu, logvar), ref, rtol=1e-5, atol=1e-5)


def test_gaussian_nll_matches_torch_distribution():
    x, raw = torch.rand(3, 1, 4, 4) * 2 - 1, torch.randn(3, 1, 4, 4)
    ref = -torch.distributions.Normal(torch.tanh(raw), 0.3).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_nll(raw, x, "mse", sigma=0.3), ref, rtol=1e-5, atol=1e-4)


def test_vae_module_shapes_for_several_sizes():
    for size, channels in ((8, 1), (28, 1), (32, 3)):
        vae = ConvVAE(VAEConfig(channels=channels, image_size=size, latent_dim=4, width=4))
        raw, mu, logvar = vae(torch.zeros(3, channels, size, size), torch.randn(3, 4))
        assert raw.shape == (3, channels, size, size) and mu.shape == logvar.shape == (3, 4)


def test_vae_elbo_beats_untrained_and_reductions_agree(tmp_path):
    over = {**TINY, "dataset": "digits", "channels": 1, "latent_dim": 4, "width": 8, "max_steps": 60,
            "fid_samples": 0, "lr": 3e-3}
    run = genlab.train("vae", overrides=over, out=tmp_path / "run", progress=False)
    r = run.recipe
    m = run.evaluate()
    with r.eval_mode():
        base = r._elbo_and_recon(r.untrained_model(), r.val_images())
    assert m["neg_elbo"] < base["neg_elbo"] and m["neg_elbo"] == pytest.approx(m["recon_nll"] + m["kl"])
    # mean reduction = sum reduction / pixels
    batch = r.batch(0)
    sums = []
    for red in ("sum", "mean"):
        r.config.reduction = red
        nll, kl, _ = r._terms(r.modules["model"], batch["x"], batch["eps"])
        loss = (nll + r.config.beta * kl).mean()
        sums.append(loss / (r.pixels if red == "mean" else 1))
    assert sums[1].item() == pytest.approx(sums[0].item() / 64, rel=1e-6)


def test_vae_arithmetic_and_other_modes_on_faces(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    over = {**TINY, "image_size": 16, "n_train": 200, "latent_dim": 8, "width": 8, "max_steps": 5,
            "fid_samples": 0, "batch_size": 16, "feature_steps": 4, "edit_samples": 10}
    run = genlab.train("vae", overrides=over, out=tmp_path / "run", progress=False)
    # the edit scores are the judge's verdicts, and an edit that is not a face counts as a failure
    from genlab.metrics.feature_net import AttributeClassifier

    def verdict(face: float):   # every attribute present, on a face or not
        return lambda self, x: (np.full(len(x), face), np.ones((len(x), len(self.attributes))))

    monkeypatch.setattr(AttributeClassifier, "_verdicts", verdict(1.0))
    yes = run.evaluate()
    monkeypatch.setattr(AttributeClassifier, "_verdicts", verdict(0.0))
    no = run.evaluate()
    for name in ("glasses", "blond", "smiling"):
        assert yes[f"edit_{name}"] == yes[f"edit_{name}_before"] == yes[f"edit_{name}_face_rate"] == 1.0
        assert no[f"edit_{name}"] == no[f"edit_{name}_before"] == no[f"edit_{name}_face_rate"] == 0.0
    monkeypatch.undo()
    out = run.sample(n=4, mode="arithmetic", attribute="glasses", strength=2.0)
    assert out.images.shape == (12, 16, 16, 3) and out.row_labels == ["input", "reconstruction", "+ glasses"]
    assert not np.array_equal(out.images[4:8], out.images[8:12])  # edited differs from the reconstruction
    strips = run.sample(n=2, mode="interpolate", steps=5)
    assert strips.images.shape == (10, 16, 16, 3) and strips.ncol == 5 and strips.col_labels[-1] == "t=1"
    files = run.sample(out=tmp_path / "s", n=3, mode="arithmetic", attribute="smiling")
    assert [f.name for f in files] == ["arithmetic_smiling.png", "arithmetic_smiling-native.png"]
    with pytest.raises(genlab.errors.ConfigError):
        run.sample(n=2, mode="arithmetic", attribute="hat")
