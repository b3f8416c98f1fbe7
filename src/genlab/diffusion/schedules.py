"""Noise schedules of the forward process q(x_t | x_0) = N(sqrt(ab_t) x_0, (1 - ab_t) I).

Timesteps are 0-based, t = 0..T-1, as in diffusers: ab_t = prod_{s<=t} (1 - beta_s), so
x_0 is the data and t = T-1 is the noisiest step (Ho et al. number them 1..T).
Betas and their cumulative product are float32, computed the way diffusers computes them,
so that samplers agree with diffusers' schedulers to float32 precision.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError

SCHEDULES = ("linear", "cosine", "offset_cosine")
PREDICTIONS = ("eps", "x0", "v")


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al. (2020): betas linear from 1e-4 to 0.02 (for T = 1000; scale them for other T)."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021): ab(t) = f(t)/f(0), f(t) = cos^2((t/T + s)/(1 + s) * pi/2), any T.

    beta_t = 1 - ab(t+1)/ab(t), capped at max_beta (only the very last steps reach the cap), so
    ab at t = T-1 is ~1e-9 of its start: the last step is pure noise. Same as diffusers'
    "squaredcos_cap_v2".
    """
    def f(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return torch.tensor([min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)], dtype=torch.float32)


def offset_cosine_betas(T: int, min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> torch.Tensor:
    """The "offset cosine" schedule of Generative Deep Learning (Foster, 2nd ed.): the signal rate
    sqrt(ab) falls along a cosine from max_signal_rate to min_signal_rate.

    Offered only to reproduce that book. It never reaches pure noise (ab at T-1 = 0.02^2 = 4e-4,
    so samples that start from N(0, I) start from a distribution the model never saw) and its
    first step is already very noisy (ab_0 = 0.95^2 ~ 0.90). Prefer "cosine".
    """
    a0, a1 = math.acos(max_signal_rate), math.acos(min_signal_rate)
    ab = torch.tensor([math.cos(a0 + (a1 - a0) * i / max(T - 1, 1)) ** 2 for i in range(T)], dtype=torch.float64)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    return (1 - ab / prev).float()


class NoiseSchedule:
    """betas, alphas and their cumulative products for T steps, plus the forward process."""

    def __init__(self, kind: str = "cosine", T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        if T < 2:
            raise ConfigError(f"diffusion needs at least 2 timesteps, got T={T}")
        if kind == "linear":
            betas = linear_betas(T, beta_start, beta_end)
        elif kind == "cosine":
            betas = cosine_betas(T)
        elif kind == "offset_cosine":
            betas = offset_cosine_betas(T)
        else:
            raise ConfigError(f"unknown noise schedule '{kind}' (use {', '.join(SCHEDULES)})")
        self.kind, self.T = kind, T
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)   # float32, as diffusers

    def __len__(self) -> int:
        return self.T

    def _coef(self, values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
        """values[t] shaped to broadcast against `like` (one value per batch row)."""
        t = torch.as_tensor(t, device=values.device).long().reshape(-1)
        v = values[t].to(device=like.device, dtype=like.dtype)
        return v.reshape(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """Sample x_t ~ q(x_t | x_0) in closed form: sqrt(ab_t) x_0 + sqrt(1 - ab_t) noise."""
        ab = self._coef(self.alphas_cumprod, t, x0)
        return ab ** 0.5 * x0 + (1 - ab) ** 0.5 * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """v = sqrt(ab_t) noise - sqrt(1 - ab_t) x_0 (Salimans & Ho, 2022)."""
        ab = self._coef(self.alphas_cumprod, t, x0)
        return ab ** 0.5 * noise - (1 - ab) ** 0.5 * x0

    def target(self, prediction: str, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """What a model with this prediction type is trained to output."""
        if prediction == "eps":
            return noise
        if prediction == "x0":
            return x0
        if prediction == "v":
            return self.velocity(x0, noise, t)
        raise ConfigError(f"unknown prediction type '{prediction}' (use {', '.join(PREDICTIONS)})")

    def split(self, prediction: str, model_output: torch.Tensor, x_t: torch.Tensor,
              t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted x_0, predicted noise) from a model output of the given prediction type."""
        ab = self._coef(self.alphas_cumprod, t, x_t)
        if prediction == "eps":
            eps = model_output
            x0 = (x_t - (1 - ab) ** 0.5 * eps) / ab ** 0.5
        elif prediction == "x0":
            x0 = model_output
            eps = (x_t - ab ** 0.5 * x0) / (1 - ab) ** 0.5
        elif prediction == "v":
            x0 = ab ** 0.5 * x_t - (1 - ab) ** 0.5 * model_output
            eps = ab ** 0.5 * model_output + (1 - ab) ** 0.5 * x_t
        else:
            raise ConfigError(f"unknown prediction type '{prediction}' (use {', '.join(PREDICTIONS)})")
        return x0, eps
