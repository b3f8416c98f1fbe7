"""Denoising diffusion: noise schedules, samplers (DDPM, DDIM), losses and guidance.

Pure tensor code; the model is any callable (x_t, t[, y]) -> tensor (see models/unet.py).
"""
from .samplers import DDIMSampler, DDPMSampler, StepOutput, make_sampler, make_timesteps, sample_batches, sample_loop
from .schedules import NoiseSchedule, cosine_betas, linear_betas, offset_cosine_betas
from .training import diffusion_loss, drop_labels, guided

__all__ = ["NoiseSchedule", "linear_betas", "cosine_betas", "offset_cosine_betas", "DDPMSampler", "DDIMSampler",
           "StepOutput", "make_sampler", "make_timesteps", "sample_batches", "sample_loop", "diffusion_loss",
           "drop_labels", "guided"]
