"""GAN networks (models/gan.py, models/cyclegan.py): shapes, the applied init, the image pool, slerp."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.models.cyclegan import CycleGANConfig, CycleGenerators, ImagePool, PatchDiscriminator, ResnetGenerator
from genlab.models.gan import (DCGANConfig, DCGANDiscriminator, DCGANGenerator, DenseDiscriminator, DenseGANConfig,
                               DenseGenerator, slerp)
from genlab.models.losses import cycle_losses


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
