"""GAN losses as pure functions of scores (tested directly; recipes only call them).

- non-saturating GAN loss, BCE on logits (Goodfellow et al. 2014): gan-mlp, dcgan
- least-squares GAN loss (Mao et al. 2017): cyclegan, with its L1 cycle / identity losses
- Wasserstein loss with gradient penalty (Gulrajani et al. 2017), optionally matching-aware
  (Reed et al. 2016): cgan
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
import torch.nn.functional as F


def bce_discriminator_loss(logits: torch.Tensor, n_real: int) -> torch.Tensor:
    """Discriminator loss on logits of [real; fake]: the first `n_real` rows are real (target 1)."""
    target = torch.cat([torch.ones(n_real), torch.zeros(len(logits) - n_real)]).to(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def bce_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log D(G(z)), i.e. BCE of the fakes' logits against 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def lsgan_loss(scores: torch.Tensor, target: float) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017) against a constant target (1 real, 0 fake)."""
    return F.mse_loss(scores, torch.full_like(scores, target))


def cycle_losses(out: dict[str, torch.Tensor], real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-direction L1 cycle (and identity) losses of a CycleGenerators output, each a scalar."""
    res = {"cycle_a": F.l1_loss(out["rec_a"], real_a), "cycle_b": F.l1_loss(out["rec_b"], real_b)}
    if "idt_a" in out:
        res["idt_a"], res["idt_b"] = F.l1_loss(out["idt_a"], real_a), F.l1_loss(out["idt_b"], real_b)
    return res


def gradient_penalty(scores: torch.Tensor, interp: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty E[(||d critic / d x||_2 - 1)^2] on interpolates `interp` (requires_grad),
    given the critic's `scores` on them. create_graph=True: the penalty is itself trained."""
    (grad,) = torch.autograd.grad(scores.sum(), interp, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def wgan_gp_critic_loss(critic: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                        labels: torch.Tensor | None, eps: torch.Tensor, gp_weight: float, autocast: Any = None,
                        wrong_labels: torch.Tensor | None = None, mismatch_weight: float = 0.0
                        ) -> tuple[torch.Tensor, dict[str, float]]:
    """Critic loss E[C(fake)] - E[C(real)] + gp_weight * GP.

    With wrong_labels and mismatch_weight w > 0 (a conditional critic), real images paired with
    a wrong label count as fakes too (the matching-aware discriminator of Reed et al. 2016):
    the "fake" term becomes (1 - w) E[C(fake, y)] + w E[C(real, y_wrong)], which teaches the
    critic what the label means, not only what a face looks like.

    Real, fake and the interpolates (and the mismatched reals) go through the critic in ONE
    forward (DDP allows one forward per backward) and are split afterwards. `fake` must be detached.
    """
    n = real.shape[0]
    interp = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    mismatch = labels is not None and wrong_labels is not None and mismatch_weight > 0
    x = torch.cat([real, fake, interp] + ([real] if mismatch else []))
    y = None if labels is None else torch.cat([labels, labels, labels] + ([wrong_labels] if mismatch else []))
    with (autocast or contextlib.nullcontext()):
        scores = (critic(x) if y is None else critic(x, y)).float()
    s_real, s_fake, s_interp = scores[:n], scores[n:2 * n], scores[2 * n:3 * n]
    gp = gradient_penalty(s_interp, interp)
    w_dist = s_real.mean() - s_fake.mean()
    logs = {"w_distance": w_dist.item()}
    if mismatch:
        s_wrong = scores[3 * n:]
        negatives = (1 - mismatch_weight) * s_fake.mean() + mismatch_weight * s_wrong.mean()
        loss = negatives - s_real.mean() + gp_weight * gp
        logs["label_margin"] = (s_real.mean() - s_wrong.mean()).item()
    else:
        loss = -w_dist + gp_weight * gp
    return loss, {"critic_loss": loss.item(), **logs, "gp": gp.item()}
