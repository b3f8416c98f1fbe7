"""Image GAN recipes (gan-mlp, dcgan, cgan, cyclegan): models, losses, training, sampling. Tiny sizes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import genlab
from genlab.errors import ConfigError
from genlab.models.cyclegan import CycleGANConfig, ImagePool, PatchDiscriminator, ResnetGenerator
from genlab.models.gan import (DCGANConfig, DCGANDiscriminator, DCGANGenerator, DenseDiscriminator, DenseGANConfig,
                               DenseGenerator)
from genlab.recipes.cyclegan import CycleGenerators, cycle_losses
from genlab.recipes.image_gans import gradient_penalty, slerp, wgan_gp_critic_loss

TINY = {"device": "cpu", "max_steps": 4, "batch_size": 8, "save_every": 0, "log_every": 2, "eval_samples": 16,
        "image_size": 16, "latent_dim": 8}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and a shared machine stays usable)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def quick_feature_nets(monkeypatch, tmp_path):
    """The metrics' feature nets train for 3 steps in tests, cached in the test's own folder."""
    from genlab.metrics import feature_net

    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))

    real = feature_net.get_feature_net
    monkeypatch.setattr(feature_net, "get_feature_net", lambda d, s, c, steps=None, robust=False: real(d, s, c, steps=3, robust=robust))


def _folder(root: Path, classes: tuple[str, ...] = ("a", "b"), n: int = 10, corrupt: bool = True) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True)
        for i in range(n):
            a = (rng.random((12, 12, 3)) * 80 + 150 * k).astype(np.uint8)
            Image.fromarray(a).save(d / f"{i}.png")
    if corrupt:
        (root / classes[0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    return root


# -- models -------------------------------------------------------------------------------------------
def test_shapes_and_init_applied():
    dense = DenseGANConfig(image_size=28, channels=1, latent_dim=8, hidden=(16, 32))
    x = DenseGenerator(dense)(torch.randn(3, 8))
    assert x.shape == (3, 1, 28, 28) and x.abs().max() <= 1
    assert DenseDiscriminator(dense)(x).shape == (3,)
    cfg = DCGANConfig(image_size=16, channels=3, latent_dim=8, n_classes=2, g_width=8, d_width=8, d_norm="layer")
    G, C = DCGANGenerator(cfg), DCGANDiscriminator(cfg)
    y = torch.eye(2)[[0, 1, 1]]
    img = G(torch.randn(3, 8), y)
    assert img.shape == (3, 3, 16, 16) and C(img, y).shape == (3,)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in C.modules())  # WGAN-GP critic: no batch norm
    # the book defines the N(0, 0.02) init but never applies it; here it is applied
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(w.std().item() - 0.02) < 0.003 and abs(w.mean().item()) < 0.002
    bn = torch.cat([m.weight for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1) < 0.01
    with pytest.raises(ValueError):
        DCGANGenerator(DCGANConfig(image_size=24))
    cc = CycleGANConfig(image_size=16, g_width=4, n_blocks=1, d_width=4, d_layers=2)
    a = torch.randn(2, 3, 16, 16)
    assert ResnetGenerator(cc)(a).shape == a.shape
    assert PatchDiscriminator(cc)(a).shape[:2] == (2, 1)


def test_image_pool_mixes_history_and_is_a_buffer():
    pool = ImagePool(4, (1, 2, 2))
    g = torch.Generator().manual_seed(0)
    first = pool.query(torch.zeros(4, 1, 2, 2), g)
    assert torch.equal(first, torch.zeros(4, 1, 2, 2)) and int(pool.count) == 4
    out = pool.query(torch.ones(64, 1, 2, 2), g)
    assert 0 < (out.flatten(1).sum(1) == 0).sum() < 64   # some old (zero) images came back
    assert set(pool.state_dict()) == {"images", "count"}


# -- losses ------------------------------------------------------------------------------------------
def test_gradient_penalty_of_a_linear_critic():
    torch.manual_seed(0)
    w = torch.randn(12)
    x = torch.randn(5, 3, 2, 2, requires_grad=True)
    gp = gradient_penalty((x.flatten(1) @ w), x)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)
    # the one-forward critic loss: W = mean C(real) - mean C(fake), same penalty
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False))
    critic[1].weight.data = w[None]
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    loss, logs = wgan_gp_critic_loss(lambda t: critic(t).squeeze(1), real, fake, None, torch.rand(5, 1, 1, 1), 10.0)
    w_dist = ((real - fake).flatten(1) @ w).mean().item()
    assert logs["w_distance"] == pytest.approx(w_dist, rel=1e-4, abs=1e-5)
    assert loss.item() == pytest.approx(-w_dist + 10 * (w.norm().item() - 1) ** 2, rel=1e-4)


def test_mismatch_term_scores_real_images_with_wrong_labels_as_fakes():
    from genlab.recipes.image_gans import wgan_gp_critic_loss

    def critic(x, y):   # depends on the image and on the label
        return x.flatten(1).mean(1) + 3.0 * y[:, 1]

    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(6, 1, 4, 4, generator=g), torch.randn(6, 1, 4, 4, generator=g)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 1, 1, 0]), 2).float()
    wrong = 1 - y
    eps = torch.rand(6, 1, 1, 1, generator=g)
    plain, _ = wgan_gp_critic_loss(critic, real, fake, y, eps, 0.0)
    loss, logs = wgan_gp_critic_loss(critic, real, fake, y, eps, 0.0, wrong_labels=wrong, mismatch_weight=0.5)
    s_real, s_fake, s_wrong = critic(real, y).mean(), critic(fake, y).mean(), critic(real, wrong).mean()
    torch.testing.assert_close(plain, s_fake - s_real)
    torch.testing.assert_close(loss, 0.5 * s_fake + 0.5 * s_wrong - s_real)
    assert logs["label_margin"] == pytest.approx((s_real - s_wrong).item(), abs=1e-5)


def test_gp_training_drives_gradient_norm_to_one():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    opt = torch.optim.Adam(critic.parameters(), lr=3e-3, betas=(0.0, 0.9))
    f = lambda t: critic(t).squeeze(1)  # noqa: E731
    # clusters ~1 apart: the optimum of -W + 10 (|g| - 1)^2 has |g| ~ 1 + 1 / (2 * 10)
    data = lambda n: (torch.randn(n, 2) * 0.1 + 0.35, torch.randn(n, 2) * 0.1 - 0.35)  # noqa: E731
    for _ in range(150):
        real, fake = data(64)
        loss, logs = wgan_gp_critic_loss(f, real, fake, None, torch.rand(64, 1), 10.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    real, fake = data(512)
    eps = torch.rand(512, 1)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(f(x).sum(), x)
    assert abs(g.norm(dim=1).mean().item() - 1) < 0.15
    assert logs["w_distance"] > 0.6   # the critic separates the two clusters (distance ~1)


def test_slerp_ends():
    a, b = torch.randn(2, 5), torch.randn(2, 5)
    s = slerp(a, b, torch.linspace(0, 1, 4))
    assert s.shape == (2, 4, 5)
    assert torch.allclose(s[:, 0], a, atol=1e-5) and torch.allclose(s[:, -1], b, atol=1e-5)


def test_cycle_losses_shapes():
    cc = CycleGANConfig(image_size=16, g_width=4, n_blocks=1)
    G = CycleGenerators(cc)
    a, b = torch.randn(2, 3, 16, 16), torch.randn(3, 3, 16, 16)
    out = G(a, b, identity=True)
    assert out["fake_b"].shape == a.shape and out["rec_a"].shape == a.shape
    assert out["fake_a"].shape == b.shape and out["rec_b"].shape == b.shape and out["idt_b"].shape == b.shape
    losses = cycle_losses(out, a, b)
    assert set(losses) == {"cycle_a", "cycle_b", "idt_a", "idt_b"} and all(v.dim() == 0 for v in losses.values())
    assert "idt_a" not in cycle_losses(G(a, b, identity=False), a, b)


# -- recipes -------------------------------------------------------------------------------------------
def _recipe(name: str, **over):
    from genlab.api import build_config
    from genlab.recipes import get_recipe

    cls = get_recipe(name)
    r = cls(build_config(cls, overrides={**TINY, **over}), "cpu")
    r.setup(training=True)
    r.optimizers = r.build_optimizers()
    r.set_mode(True)
    return r


def test_discriminator_learns_real_from_fake():
    r = _recipe("dcgan", n_train=40, g_width=8, d_width=8, lr=2e-3)
    logs = [r.training_step(r.batch(i), i + 1) for i in range(8)]
    assert logs[-1]["d_real"] > logs[-1]["d_fake"]
    assert logs[-1]["d_loss"] < logs[0]["d_loss"]


def test_ema_generator_trails_the_generator_and_is_the_one_sampled():
    r = _recipe("dcgan", n_train=40, g_width=8, d_width=8, lr=2e-3, ema_decay=0.9)
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


def test_cgan_critic_steps_and_label_conditioning(tmp_path):
    r = _recipe("cgan", data=str(_folder(tmp_path / "imgs", corrupt=False)), g_width=8, d_width=8, n_critic=2,
                lr=1e-3)
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


def test_cgan_attribute_scores_follow_the_judge_and_fail_non_faces(monkeypatch):
    """cgan's attribute_acc is the judge's verdict on the requested label, a non-face a failure."""
    from genlab.data.faces import ATTRIBUTES
    from genlab.metrics.feature_net import AttributeClassifier

    r = _recipe("cgan", g_width=8, d_width=8, n_train=64, eval_samples=10)
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
    from genlab.recipes.image_gans import CGANRecipe

    for bad in ({"critic_norm": "batch"}, {"grad_accum": 2}, {"image_size": 24}):
        with pytest.raises(ConfigError):
            build_config(CGANRecipe, overrides=bad)


def test_train_on_folder_with_corrupt_file_then_sample_modes(tmp_path, capsys):
    data = _folder(tmp_path / "imgs")
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
        assert [Path(p).name for p in paths] == names and all(Path(p).stat().st_size > 0 for p in paths)
    imgs = loaded.sample(n=5, label=0)
    assert imgs.shape == (5, 3, 16, 16)


def test_dcgan_partial_batch_and_interpolation(tmp_path):
    # 10 images and batch 8: batches wrap across epochs (never a partial or crashing last batch)
    data = _folder(tmp_path / "imgs", classes=("x",), corrupt=False)   # 1 held-out image: no FID, no crash
    run = genlab.train("dcgan", data=data, out=tmp_path / "run", progress=False,
                       overrides={**TINY, "g_width": 8, "d_width": 8, "max_steps": 3})
    paths = run.sample(out=tmp_path / "s", mode="interpolate", n=2, steps=4)
    assert Path(paths[0]).name == "interpolation.png"
    from PIL import Image

    w, h = Image.open(paths[0]).size
    assert w > h   # strips: 4 per row, 2 rows


def test_gan_mlp_trains_on_embedded_digits(tmp_path):
    r = _recipe("gan-mlp", dataset="digits", image_size=28, channels=1, hidden=[32, 32])
    logs = [r.training_step(r.batch(i), i + 1) for i in range(3)]
    assert all(np.isfinite(v) for row in logs for v in row.values())
    with r.eval_mode():
        assert r.generate(r.Sample(n=2)).shape == (2, 1, 28, 28)


def test_cyclegan_folder_domains_and_translation(tmp_path, capsys):
    data = _folder(tmp_path / "ab", classes=("A", "B"), n=40)
    run = genlab.train("cyclegan", data=data, out=tmp_path / "run", progress=False,
                       overrides={"device": "cpu", "max_steps": 3, "batch_size": 2, "image_size": 16, "g_width": 4,
                                  "n_blocks": 1, "d_width": 4, "d_layers": 2, "pool_size": 3, "save_every": 0,
                                  "eval_samples": 4})
    assert "skipped 1 unreadable" in capsys.readouterr().err
    m = run.evaluate()
    r = run.recipe
    with r.eval_mode():   # cycle_l1 is the round trip's mean absolute error in 0-1 pixel units
        src = r.val_a[:4].float() / 127.5 - 1 if r.val_a.dtype == torch.uint8 else r.val_a[:4]
        _, rec = r.translate(src, "AtoB")
    assert m["cycle_l1_AtoB"] == pytest.approx(float((rec - src).abs().mean() / 2), rel=1e-4)
    assert m["n_fake_AtoB"] == 4 and m["fid_floor_AtoB"] < m["fid_AtoB"]
    paths = run.sample(out=tmp_path / "s", input=str(data / "B"), direction="BtoA", n=3)
    names = [Path(p).name for p in paths]
    assert names[:2] == ["round-trip-BtoA.png", "translated-BtoA.png"] and len(names) == 5
    with pytest.raises(ConfigError):
        run.sample(direction="sideways")
