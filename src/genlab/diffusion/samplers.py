"""Reverse-process samplers as small objects, diffusers-style: set_timesteps(), step().

Both are pure tensor code over a NoiseSchedule. For the same model output, sample, timestep
and noise, one step equals diffusers' DDPMScheduler / DDIMScheduler configured as:
  DDPMScheduler(beta_schedule="linear" | "squaredcos_cap_v2", clip_sample=False,
                prediction_type="epsilon" | "sample" | "v_prediction", variance_type="fixed_small")
  DDIMScheduler(same, set_alpha_to_one=True, timestep_spacing="trailing" | "leading" | "linspace")
Conventions that differ from diffusers:
  * DDIM's previous timestep is the next entry of our own timestep list. diffusers computes it as
    t - T // steps, which is not the next listed timestep for "linspace" spacing or when
    steps does not divide T (steps then get skipped or repeated); the two agree whenever
    T % steps == 0 with "leading" or "trailing" spacing (the tested cases).
  * When clip_x0 is set, DDIM re-derives the noise from the clipped x_0 (diffusers'
    use_clipped_model_output=True), as guided-diffusion does, so x_{t-1} stays consistent.
  * Noise comes from torch.randn(shape, generator=...) exactly as diffusers draws it, or is passed in.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager

import numpy as np
import torch

from ..errors import ConfigError
from .schedules import NoiseSchedule
from .training import guided

SPACINGS = ("trailing", "leading", "linspace")


@dataclass
class StepOutput:
    prev_sample: torch.Tensor           # x_{t_prev}
    pred_x0: torch.Tensor               # the model's current guess of x_0


def make_timesteps(T: int, steps: int, spacing: str = "trailing") -> torch.Tensor:
    """`steps` timesteps from noisiest to cleanest, spaced as diffusers spaces them.

    trailing (default): starts at T-1, so sampling starts from pure noise (Lin et al. 2024);
    leading: the DDIM paper's 0, T/steps, ... (never visits T-1); linspace: rounded linspace(0, T-1).
    """
    if not 1 <= steps <= T:
        raise ConfigError(f"steps must be between 1 and T={T}, got {steps}")
    if spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / steps)).astype(np.int64) - 1
    elif spacing == "leading":
        ts = (np.arange(0, steps) * (T // steps)).round()[::-1].astype(np.int64)
    elif spacing == "linspace":
        ts = np.linspace(0, T - 1, steps).round()[::-1].astype(np.int64)
    else:
        raise ConfigError(f"unknown timestep spacing '{spacing}' (use {', '.join(SPACINGS)})")
    return torch.from_numpy(ts.copy())


def _noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


class _Sampler:
    def __init__(self, schedule: NoiseSchedule, prediction: str = "eps", clip_x0: bool = False):
        self.schedule, self.prediction, self.clip_x0 = schedule, prediction, clip_x0
        self.timesteps = torch.arange(schedule.T - 1, -1, -1)
        self._prev: dict[int, int] = {}
        self._index_prev()

    def _index_prev(self) -> None:
        ts = self.timesteps.tolist()
        self._prev = {t: (ts[i + 1] if i + 1 < len(ts) else -1) for i, t in enumerate(ts)}

    def prev_timestep(self, t: int) -> int:
        """The timestep the step from t lands on (-1 = the clean image)."""
        return self._prev[int(t)]

    def _alpha_bar(self, t: int) -> torch.Tensor:
        return self.schedule.alphas_cumprod[t] if t >= 0 else torch.tensor(1.0)

    def _x0_eps(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ab = self._alpha_bar(t).to(x_t.device, x_t.dtype)
        x0, eps = self.schedule.split(self.prediction, model_output, x_t, torch.tensor([t]))
        if self.clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = (x_t - ab ** 0.5 * x0) / (1 - ab) ** 0.5
        return x0, eps


class DDPMSampler(_Sampler):
    """Ancestral sampling of Ho et al. (2020): x_{t-1} ~ q(x_{t-1} | x_t, x_0 = predicted x_0).

    variance "small" is the posterior variance beta~_t (diffusers "fixed_small"), "large" is
    beta_t (Ho et al.'s other choice, used by Hands-On ML). With fewer steps than T it samples
    the respaced chain (the betas between visited timesteps), as diffusers does.
    """

    def __init__(self, schedule: NoiseSchedule, prediction: str = "eps", variance: str = "small",
                 clip_x0: bool = False):
        if variance not in ("small", "large"):
            raise ConfigError(f"unknown DDPM variance '{variance}' (use small or large)")
        super().__init__(schedule, prediction, clip_x0)
        self.variance = variance

    def set_timesteps(self, steps: int | None = None, spacing: str = "trailing") -> torch.Tensor:
        T = self.schedule.T
        self.timesteps = torch.arange(T - 1, -1, -1) if steps in (None, T) else make_timesteps(T, steps, spacing)
        self._index_prev()
        return self.timesteps

    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor,
             generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> StepOutput:
        t = int(t)
        t_prev = self.prev_timestep(t)
        ab = self._alpha_bar(t).to(x_t.device, x_t.dtype)
        ab_prev = self._alpha_bar(t_prev).to(x_t.device, x_t.dtype)
        alpha = ab / ab_prev                     # the step's alpha (respaced when steps are skipped)
        beta = 1 - alpha
        x0, _ = self._x0_eps(model_output, t, x_t)
        # posterior mean, eq. 7 of Ho et al.
        mean = (ab_prev ** 0.5 * beta / (1 - ab)) * x0 + (alpha ** 0.5 * (1 - ab_prev) / (1 - ab)) * x_t
        if t == 0 or t_prev < 0:
            return StepOutput(mean, x0)
        var = ((1 - ab_prev) / (1 - ab) * beta).clamp(min=1e-20) if self.variance == "small" else beta
        z = noise if noise is not None else _noise_like(x_t, generator)
        return StepOutput(mean + var ** 0.5 * z, x0)


class DDIMSampler(_Sampler):
    """Song et al. (2021): any number of steps; eta = 0 is deterministic, eta = 1 has DDPM's
    posterior variance between the visited timesteps."""

    def __init__(self, schedule: NoiseSchedule, prediction: str = "eps", eta: float = 0.0,
                 clip_x0: bool = False):
        if eta < 0:
            raise ConfigError(f"eta must be >= 0, got {eta}")
        super().__init__(schedule, prediction, clip_x0)
        self.eta = eta

    def set_timesteps(self, steps: int, spacing: str = "trailing") -> torch.Tensor:
        self.timesteps = make_timesteps(self.schedule.T, steps, spacing)
        self._index_prev()
        return self.timesteps

    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor,
             generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> StepOutput:
        t = int(t)
        t_prev = self.prev_timestep(t)
        ab = self._alpha_bar(t).to(x_t.device, x_t.dtype)
        ab_prev = self._alpha_bar(t_prev).to(x_t.device, x_t.dtype)
        x0, eps = self._x0_eps(model_output, t, x_t)
        sigma = self.eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)) ** 0.5   # eq. 16 of Song et al.
        prev = ab_prev ** 0.5 * x0 + (1 - ab_prev - sigma ** 2) ** 0.5 * eps
        if self.eta > 0:
            z = noise if noise is not None else _noise_like(x_t, generator)
            prev = prev + sigma * z
        return StepOutput(prev, x0)


def make_sampler(kind: str, schedule: NoiseSchedule, prediction: str = "eps", steps: int = 0, eta: float = 1.0,
                 spacing: str = "trailing", clip_x0: bool = False, ddim_steps: int = 50) -> DDPMSampler | DDIMSampler:
    """A sampler by name, its timesteps set: "ddpm" (ancestral, small variance; steps 0 = all T)
    or "ddim" (steps 0 = min(ddim_steps, T))."""
    if steps > schedule.T:
        raise ConfigError(f"invalid sample option: steps {steps} > timesteps {schedule.T}")
    if kind == "ddpm":
        s: DDPMSampler | DDIMSampler = DDPMSampler(schedule, prediction, variance="small", clip_x0=clip_x0)
        s.set_timesteps(steps or None, spacing)
    else:
        s = DDIMSampler(schedule, prediction, eta=eta, clip_x0=clip_x0)
        s.set_timesteps(steps or min(ddim_steps, schedule.T), spacing)
    return s


def sample_loop(model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], sampler: _Sampler,
                x_T: torch.Tensor, generator: torch.Generator | None = None,
                keep: tuple[int, ...] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Run the reverse process from x_T over sampler.timesteps.

    model_fn(x_t, t) returns the model output for a batch at timestep tensor t (shape (N,)).
    `keep` lists timesteps whose x_t (before the step) is returned, e.g. for a reverse-process strip.
    """
    x = x_T
    kept: dict[int, torch.Tensor] = {}
    for t in sampler.timesteps.tolist():
        if t in keep:
            kept[t] = x.clone()
        out = model_fn(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
        x = sampler.step(out.float(), t, x, generator=generator).prev_sample
    return x, kept


@torch.no_grad()
def sample_batches(model: Callable[..., torch.Tensor], sampler: _Sampler, n: int, shape: tuple[int, ...],
                   generator: torch.Generator, labels: torch.Tensor | None = None, guidance_scale: float = 1.0,
                   null: int | torch.Tensor = 0, keep: tuple[int, ...] = (), batch_size: int = 256,
                   device: torch.device | str = "cpu",
                   autocast: Callable[[], ContextManager] = contextlib.nullcontext
                   ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """n samples (n, *shape) in [-1, 1] on the CPU, drawn batch by batch with one generator, with
    classifier-free guidance (guided) when labels are given, and the kept x_t of the first batch
    (see sample_loop). `autocast` wraps each model call (e.g. bf16)."""
    out, kept = [], {}
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        x = torch.randn(m, *shape, generator=generator).to(device)
        y = labels[start:start + m].to(device) if labels is not None else None
        fn = guided(model, y, guidance_scale, null)

        def model_fn(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with autocast():
                return fn(xt, t)
        x, k = sample_loop(model_fn, sampler, x, generator=generator, keep=keep if start == 0 else ())
        kept = kept or k
        out.append(x.clamp(-1, 1).float().cpu())
    return torch.cat(out), {t: v.float().cpu() for t, v in kept.items()}
