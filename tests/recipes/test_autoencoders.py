"""Autoencoder family (models/autoencoder.Autoencoder, recipes/autoencoders.py): modules, losses, tiny runs."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import genlab
from genlab.data.image_datasets import load_digits_tensors
from genlab.models.autoencoder import VARIANTS, AEConfig, Autoencoder, sparsity_kl

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
    assert run.sample(n=3, mode="random").images.shape == (3, 8, 8, 1)
    recon = run.sample(n=5)   # a row of inputs above a row of their reconstructions
    assert recon.row_labels == ["input", "reconstruction"] and recon.ncol == 5 and len(recon.images) == 10


def test_training_on_image_folder_with_corrupt_file(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    run = genlab.train("autoencoder", data=tmp_path / "imgs",
                       overrides={**TINY, "channels": 3, "max_steps": 5, "variant": "conv"},
                       out=tmp_path / "run", progress=False)
    assert run.recipe.data.skipped == 1 and "skipped 1" in capsys.readouterr().err
    assert len(run.recipe.data.train) + len(run.recipe.data.val) == 24
    assert math.isfinite(run.evaluate()["mse_per_pixel"])
