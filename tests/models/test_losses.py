"""GAN losses (models/losses.py): BCE, LSGAN, WGAN-GP and its gradient penalty."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.models.losses import (bce_discriminator_loss, bce_generator_loss, gradient_penalty, lsgan_loss,
                                  wgan_gp_critic_loss)


def test_bce_and_lsgan_losses_are_zero_only_at_their_targets():
    sure = torch.tensor([20.0, 20.0, -20.0])           # D: two reals then one fake, all confidently right
    assert bce_discriminator_loss(sure, 2).item() < 1e-6
    assert bce_discriminator_loss(-sure, 2).item() > 10
    assert bce_generator_loss(torch.tensor([20.0])).item() < 1e-6 < bce_generator_loss(torch.tensor([-1.0])).item()
    assert lsgan_loss(torch.ones(4), 1.0).item() == 0 and lsgan_loss(torch.zeros(4), 1.0).item() == 1


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
