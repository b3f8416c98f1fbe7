"""Autoencoder family and VAE: modules, losses and tiny end-to-end runs."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import genlab
from genlab.models.autoencoder import (VARIANTS, AEConfig, Autoencoder, ConvVAE, VAEConfig, kl_divergence,
                                       reconstruction_nll, sparsity_kl)
from genlab.recipes.image_data import load_digits_tensors

TINY = {"image_size": 8, "eval_every": 0, "save_every": 0, "log_every": 5, "batch_size": 32}


def _ae(variant, **kw):
    torch.manual_seed(0)
    return Autoencoder(AEConfig(variant=variant, channels=1, image_size=8, hidden=[32], latent_dim=6,
                                conv_width=8, **kw))


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_shapes_and_loss_falls(variant):
    x, _ = load_digits_tensors(8, 1)
    x = x[:128]
    model = _ae(variant)
    raw, codes = model(x)
    assert raw.shape == x.shape and codes.shape == (128, 6)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        raw, codes = model(x)
        loss = F.binary_cross_entropy_with_logits(raw, (x + 1) / 2)
        if variant == "sparse":
            assert ((codes > 0) & (codes < 1)).all()
            loss = loss + 0.01 * sparsity_kl(codes, 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_weight_init_is_applied():
    model = _ae("dense")
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(torch.all(m.bias == 0) for m in linears)  # torch's default bias is nonzero
    w = linears[0].weight
    assert abs(w.std().item() - math.sqrt(2 / w.shape[1])) < 0.2 * math.sqrt(2 / w.shape[1])  # He init


def test_tied_weights_are_shared():
    model = _ae("tied")
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith("decoder") and n.endswith("weight") for n in names)  # only biases
    dense = _ae("dense")
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in dense.parameters())
    z = torch.randn(4, 6)
    before = model.decode(z)
    first = model.encoder[1]
    with torch.no_grad():
        first.weight.mul_(2.0)
    assert not torch.allclose(before, model.decode(z))  # the decoder saw the encoder's change
    first.weight.grad = None
    model.decode(z).sum().backward()
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("noise", ["gaussian", "dropout"])
def test_denoising_noise_only_in_train_mode(noise):
    model = _ae("denoising", noise=noise, noise_amount=0.5)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    model.eval()
    assert torch.equal(model.corrupt(x), x)
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model.corrupt(x), x)


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


def test_autoencoder_recipe_trains_and_evaluates(tmp_path):
    run = genlab.train("autoencoder", overrides={**TINY, "max_steps": 40, "eval_batch": 7},
                       out=tmp_path / "run", progress=False)
    trained = run.evaluate()
    assert trained["mse_per_image"] == pytest.approx(trained["mse_per_pixel"] * 64, rel=1e-5)
    fresh = genlab.load(tmp_path / "run")
    torch.manual_seed(1)
    for m in fresh.recipe.modules.values():  # re-initialise: an untrained baseline
        m.apply(lambda mod: mod.reset_parameters() if hasattr(mod, "reset_parameters") else None)
    assert trained["mse_per_pixel"] < fresh.evaluate()["mse_per_pixel"]
    paths = run.sample(out=tmp_path / "s", n=5)
    assert paths[0].name == "reconstructions.png" and paths[0].stat().st_size > 0
    assert run.sample(n=3, mode="random").shape == (3, 1, 8, 8)


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
    assert out.shape == (12, 3, 16, 16) and torch.isfinite(out).all() and out.abs().max() <= 1
    assert not torch.allclose(out[4:8], out[8:12])  # edited differs from the reconstruction
    assert run.sample(n=2, mode="interpolate", steps=5).shape == (10, 3, 16, 16)
    files = run.sample(out=tmp_path / "s", n=3, mode="arithmetic", attribute="smiling")
    assert files[0].name == "arithmetic_smiling.png"
    with pytest.raises(genlab.errors.ConfigError):
        run.sample(n=2, mode="arithmetic", attribute="hat")


def test_training_on_image_folder_with_corrupt_file(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    run = genlab.train("autoencoder", data=tmp_path / "imgs",
                       overrides={**TINY, "channels": 3, "max_steps": 5, "variant": "conv"},
                       out=tmp_path / "run", progress=False)
    assert run.recipe.data.skipped == 1 and "skipped 1" in capsys.readouterr().err
    assert len(run.recipe.data.train) + len(run.recipe.data.val) == 24
    assert math.isfinite(run.evaluate()["mse_per_pixel"])
