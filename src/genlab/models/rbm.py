"""A Bernoulli restricted Boltzmann machine (Hinton 2002; Tieleman 2008 for persistent CD).

Energy E(v, h) = -b.v - c.h - v.W.h over binary visible v and hidden h, so

    p(h_j = 1 | v) = sigmoid(c_j + v.W[:, j]),   p(v_i = 1 | h) = sigmoid(b_i + W[i].h)
    F(v) = -b.v - sum_j softplus(c_j + v.W[:, j])          (free energy, h summed out)

The log-likelihood gradient is E_data[-dF/dtheta] - E_model[-dF/dtheta]; contrastive
divergence replaces the model expectation by k Gibbs steps started at the data (CD-k) or at
chains kept from the previous update (PCD). `cd_loss` is the surrogate whose autograd
gradient is exactly that estimate.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RBM(nn.Module):
    def __init__(self, n_visible: int, n_hidden: int):
        super().__init__()
        self.W = nn.Parameter(torch.randn(n_visible, n_hidden) * 0.01)
        self.b = nn.Parameter(torch.zeros(n_visible))   # visible bias
        self.c = nn.Parameter(torch.zeros(n_hidden))    # hidden bias

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(v @ self.W + self.c)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h @ self.W.t() + self.b)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return -v @ self.b - F.softplus(v @ self.W + self.c).sum(-1)

    @torch.no_grad()
    def gibbs(self, v: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """k steps of block Gibbs sampling v -> h -> v (binary samples throughout)."""
        for _ in range(k):
            h = torch.bernoulli(self.hidden_probs(v), generator=generator)
            v = torch.bernoulli(self.visible_probs(h), generator=generator)
        return v

    def cd_loss(self, v_data: torch.Tensor, v_model: torch.Tensor,
                model_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Mean F(data) - mean F(model samples): its gradient is minus the CD estimate of the
        log-likelihood gradient (the samples are constants). `model_weights` (summing to 1)
        weights the negative phase instead of a plain mean, e.g. exact probabilities of every
        state of a tiny RBM."""
        fe_model = self.free_energy(v_model.detach())
        negative = fe_model.mean() if model_weights is None else (model_weights.detach() * fe_model).sum()
        return self.free_energy(v_data).mean() - negative

    def pseudo_log_likelihood(self, v: torch.Tensor) -> torch.Tensor:
        """Exact pseudo-log-likelihood sum_i log p(v_i | v_-i) per row (all D bits, not
        sklearn's one-random-bit estimate times D)."""
        fe = self.free_energy(v)
        pre = v @ self.W + self.c                                  # (B, H)
        # flipping bit i changes the hidden pre-activations by (1 - 2 v_i) W[i]
        flip = (1 - 2 * v)                                         # (B, D)
        pre_flip = pre[:, None, :] + flip[:, :, None] * self.W[None]   # (B, D, H)
        fe_flip = -(v @ self.b)[:, None] - flip * self.b - F.softplus(pre_flip).sum(-1)
        return F.logsigmoid(fe_flip - fe[:, None]).sum(-1)

    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Mean squared error per pixel of the mean-field reconstruction v -> p(h) -> p(v)."""
        return ((self.visible_probs(self.hidden_probs(v)) - v) ** 2).mean()

    @torch.no_grad()
    def ais_log_z(self, n_chains: int = 100, n_betas: int = 1000, base_bias: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> float:
        """An annealed-importance-sampling *estimate* of log Z (Salakhutdinov & Murray 2008).

        Anneals from a base RBM with no weights and visible bias `base_bias` (the data's
        log-odds is a good choice) to this RBM; the estimate is stochastic and, in expectation
        of Z rather than log Z, unbiased — log Z itself tends to be underestimated."""
        D, H = self.W.shape
        a0 = torch.zeros(D) if base_bias is None else base_bias
        betas = torch.linspace(0, 1, n_betas)
        log_z0 = F.softplus(a0).sum() + H * math.log(2)

        def log_p(v: torch.Tensor, beta: float) -> torch.Tensor:  # unnormalised log p_beta(v)
            return ((1 - beta) * (v @ a0) + beta * (v @ self.b)
                    + F.softplus(beta * (v @ self.W + self.c)).sum(-1))

        v = torch.bernoulli(torch.sigmoid(a0).expand(n_chains, D), generator=generator)
        log_w = torch.zeros(n_chains)
        for beta_prev, beta in zip(betas[:-1].tolist(), betas[1:].tolist()):
            log_w += log_p(v, beta) - log_p(v, beta_prev)
            h = torch.bernoulli(torch.sigmoid(beta * (v @ self.W + self.c)), generator=generator)
            v = torch.bernoulli(torch.sigmoid((1 - beta) * a0 + beta * (h @ self.W.t() + self.b)),
                                generator=generator)
        return float(log_z0 + torch.logsumexp(log_w, 0) - math.log(n_chains))
