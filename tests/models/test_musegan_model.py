"""MuseGAN generator and critic: shapes for the book and CPU sizes, the linear layers equal the
book's convolutions, the softmax output, latents steer what they should; binary (straight-through)
output, resize upsampling, the critic's onset stream."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.models.musegan import MuseCritic, MuseGANConfig, MuseGenerator


@pytest.mark.parametrize("cfg", [MuseGANConfig(),                                    # the book: 4 x 2 x 16 x 84
                                 MuseGANConfig(n_pitches=48, width=0.125, output="softmax"),
                                 MuseGANConfig(n_tracks=2, n_bars=4, n_steps=8, n_pitches=24, z_dim=8, width=0.05)])
def test_shapes(cfg: MuseGANConfig):
    G, C = MuseGenerator(cfg).eval(), MuseCritic(cfg)
    z = torch.randn(3, 2 + 2 * cfg.n_tracks, cfg.z_dim)
    x = G(z)
    assert x.shape == (3, cfg.n_tracks, cfg.n_bars, cfg.n_steps, cfg.n_pitches)
    assert x.min() >= -1 and x.max() <= 1
    assert C(x).shape == (3,)


def test_softmax_output_is_a_distribution_with_a_rest():
    G = MuseGenerator(MuseGANConfig(n_pitches=24, n_tracks=2, z_dim=8, width=0.05, output="softmax")).eval()
    p = (G(torch.randn(4, 6, 8)) + 1) / 2
    total = p.sum(-1)
    assert (total < 1).all() and (total > 0).all()        # the rest takes the remainder


def test_critic_bar_and_pitch_layers_equal_the_books_convolutions():
    cfg = MuseGANConfig(n_pitches=24, width=0.05)
    C = MuseCritic(cfg)
    a = C.bars.out_features
    x = torch.randn(2, cfg.n_tracks, cfg.n_bars, cfg.n_steps, cfg.n_pitches)
    conv = nn.Conv3d(cfg.n_tracks, a, (2, 1, 1))           # the book's first layer, weights copied
    conv.weight.data = C.bars.weight.data.view(a, cfg.n_tracks, 2)[..., None, None].clone()
    conv.bias.data = C.bars.bias.data.clone()
    ours = C.bars(x.permute(0, 3, 4, 2, 1).unfold(3, 2, 1).reshape(2, cfg.n_steps, cfg.n_pitches, 1, -1))
    theirs = conv(x)                                        # (2, a, 1, steps, pitches)
    assert torch.allclose(ours[:, :, :, 0].permute(0, 3, 1, 2), theirs[:, :, 0], atol=1e-6)
    conv12 = nn.Conv3d(a, a, (1, 1, 12), stride=(1, 1, 12))  # semitones: kernel = stride = 12
    conv12.weight.data = C.semitones.weight.data.view(a, 12, a).permute(0, 2, 1)[:, :, None, None, :].clone()
    conv12.bias.data = C.semitones.bias.data.clone()
    h = torch.randn(2, a, 1, cfg.n_steps, cfg.n_pitches)
    ours = C.semitones(h[:, :, 0].permute(0, 2, 3, 1).reshape(2, cfg.n_steps, cfg.n_pitches // 12, 12 * a))
    assert torch.allclose(ours.permute(0, 3, 1, 2), conv12(h)[:, :, 0], atol=1e-5)


def test_style_latent_is_shared_and_groove_is_per_track():
    cfg = MuseGANConfig(n_pitches=24, n_tracks=2, z_dim=8, width=0.05)
    G = MuseGenerator(cfg).eval()
    z = torch.randn(1, 6, 8)
    base = G(z)
    z2 = z.clone()
    z2[0, 2 + cfg.n_tracks] += 3.0                         # groove of track 0 only
    out = G(z2)
    assert not torch.allclose(out[0, 0], base[0, 0]) and torch.allclose(out[0, 1], base[0, 1])
    z3 = z.clone()
    z3[0, 1] += 3.0                                        # style: every track changes
    out = G(z3)
    assert not torch.allclose(out[0, 0], base[0, 0]) and not torch.allclose(out[0, 1], base[0, 1])


def test_hard_output_is_binary_and_passes_gradients():
    for output in ("softmax", "tanh"):
        cfg = MuseGANConfig(n_pitches=24, n_tracks=2, z_dim=8, width=0.05, output=output, hard=True)
        G = MuseGenerator(cfg).train()
        x = G(torch.randn(4, 6, 8))
        assert set(x.unique().tolist()) <= {-1.0, 1.0}
        if output == "softmax":
            assert ((x > 0).sum(-1) <= 1).all()            # one pitch or a rest per step and track
        (x * torch.randn_like(x)).sum().backward()         # straight through: the soft output's gradient
        assert G.bar_gens[0].to_pitches.weight.grad.abs().sum() > 0


def test_resize_upsampling_holds_notes_where_the_books_layers_alternate():
    """Untrained, a bar doubled by repeat + convolution changes pitch far less often from step to
    step than one doubled by the book's kernel = stride layers (the fragmentation it removes)."""
    changes = {}
    for steps_up in ("transpose", "resize"):
        torch.manual_seed(0)
        G = MuseGenerator(MuseGANConfig(n_pitches=48, z_dim=8, width=0.125, output="softmax", hard=True,
                                        steps_up=steps_up)).eval()
        x = G(torch.randn(64, 10, 8, generator=torch.Generator().manual_seed(1)))
        pitch = x.argmax(-1) + 100 * (x.max(-1).values < 0)          # the rest is its own symbol
        changes[steps_up] = (pitch[..., 1:] != pitch[..., :-1]).float().mean().item()
    assert changes["resize"] < 0.6 * changes["transpose"], changes


def test_onset_stream_reads_note_changes():
    cfg = MuseGANConfig(n_tracks=2, n_pitches=24, z_dim=8, width=0.05, onset_stream=True)
    C = MuseCritic(cfg)
    held = -torch.ones(1, 2, 2, 16, 24)
    held[..., 5] = 1                                       # one pitch held through both bars
    moving = -torch.ones(1, 2, 2, 16, 24)
    moving[..., ::2, 5] = moving[..., 1::2, 7] = 1        # the same two pitches, changing every step
    assert C(held).shape == (1,)
    x = moving.clone().requires_grad_(True)
    g, = torch.autograd.grad(C(x).sum(), x, create_graph=True)   # double backward (the gradient penalty)
    g.square().sum().backward()
    assert C.onsets[0].weight.grad.abs().sum() > 0        # changes reach the stream, through the penalty too


@pytest.mark.parametrize("output", ["softmax", "tanh"])
def test_stochastic_output_draws_notes_in_training_and_plays_the_likeliest_when_sampling(output: str):
    """Training plays notes drawn from the output's distribution (often not the likeliest of a
    nearly flat untrained one); sampling (eval) plays the likeliest, the same on every call."""
    cfg = MuseGANConfig(n_pitches=24, n_tracks=2, z_dim=8, width=0.05, output=output, hard=True, stochastic=True)
    torch.manual_seed(0)
    G = MuseGenerator(cfg)
    z = torch.randn(16, 6, 8)
    likeliest = G.eval()(z)
    assert torch.equal(likeliest, G(z))
    drawn = G.train()(z)
    assert torch.allclose(drawn.abs(), torch.ones_like(drawn))    # binary (up to straight-through rounding)
    if output == "softmax":
        assert ((drawn > 0).sum(-1) <= 1).all()
    assert (drawn != likeliest).any(-1).float().mean() > 0.5      # most steps play other notes
    (drawn * torch.randn_like(drawn)).sum().backward()             # straight through, as the argmax
    assert G.bar_gens[0].to_pitches.weight.grad.abs().sum() > 0
