"""Schedules and samplers: shape of the schedules, and step-by-step equality with diffusers."""
import pytest
import torch

from genlab.diffusion import DDIMSampler, DDPMSampler, NoiseSchedule, make_timesteps
from genlab.errors import ConfigError

diffusers = pytest.importorskip("diffusers")

PRED = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}
BETA = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


@pytest.mark.parametrize("kind", ["linear", "cosine", "offset_cosine"])
def test_alpha_bar_decreases(kind):
    ab = NoiseSchedule(kind, 1000).alphas_cumprod
    assert (ab[1:] < ab[:-1]).all()
    assert ab[0] <= 1


def test_cosine_endpoints_any_T():
    for T in (50, 1000, 4000):   # Hands-On ML uses T = 4000
        ab = NoiseSchedule("cosine", T).alphas_cumprod
        assert ab[0] > 1 - 0.1 / T and ab[-1] < 1e-6
    ab = NoiseSchedule("linear", 1000).alphas_cumprod
    assert ab[0] > 0.999 and ab[-1] < 1e-4
    # the book's offset cosine is documented as never reaching pure noise
    assert NoiseSchedule("offset_cosine", 1000).alphas_cumprod[-1] == pytest.approx(0.02 ** 2, rel=1e-3)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_betas_and_add_noise_match_diffusers(kind):
    ours = NoiseSchedule(kind, 1000)
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=BETA[kind])
    torch.testing.assert_close(ours.betas, ref.betas, atol=1e-7, rtol=0)
    torch.testing.assert_close(ours.alphas_cumprod, ref.alphas_cumprod, atol=1e-7, rtol=0)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 3, 8, 8, generator=g), torch.randn(6, 3, 8, 8, generator=g)
    t = torch.tensor([0, 1, 10, 500, 998, 999])
    torch.testing.assert_close(ours.add_noise(x0, noise, t), ref.add_noise(x0, noise, t), atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.velocity(x0, noise, t), ref.get_velocity(x0, noise, t), atol=1e-6, rtol=0)


def _inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)


@pytest.mark.parametrize("pred", ["eps", "v", "x0"])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("variance", ["small", "large"])
def test_ddpm_step_matches_diffusers(pred, kind, variance):
    T = 1000
    ours = DDPMSampler(NoiseSchedule(kind, T), prediction=pred, variance=variance)
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule=BETA[kind], clip_sample=False,
                                  prediction_type=PRED[pred], variance_type=f"fixed_{variance}")
    ours.set_timesteps()
    ref.set_timesteps(T)
    assert torch.equal(ours.timesteps, ref.timesteps)
    for t in (999, 998, 700, 300, 1, 0):
        out, x = _inputs(t)
        a = ours.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        b = ref.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_ddpm_respaced_and_clipped_match_diffusers():
    sched = NoiseSchedule("linear", 1000)
    ours = DDPMSampler(sched, clip_x0=True)
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, clip_sample=True, timestep_spacing="trailing")
    ours.set_timesteps(50)
    ref.set_timesteps(50)
    assert torch.equal(ours.timesteps, ref.timesteps)
    for t in ours.timesteps[[0, 1, 25, -2]].tolist():
        out, x = _inputs(t)
        a = ours.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        b = ref.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pred", ["eps", "v", "x0"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("kind,spacing,steps", [("linear", "trailing", 50), ("cosine", "leading", 20),
                                                ("cosine", "trailing", 10)])
def test_ddim_step_matches_diffusers(pred, eta, kind, spacing, steps):
    T = 1000
    ours = DDIMSampler(NoiseSchedule(kind, T), prediction=pred, eta=eta)
    ref = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule=BETA[kind], clip_sample=False,
                                  set_alpha_to_one=True, prediction_type=PRED[pred], timestep_spacing=spacing)
    ours.set_timesteps(steps, spacing)
    ref.set_timesteps(steps)
    assert torch.equal(ours.timesteps, ref.timesteps)
    for t in ours.timesteps[[0, 1, steps // 2, -1]].tolist():
        out, x = _inputs(t)
        a = ours.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        b = ref.step(out, t, x, eta=eta, generator=torch.Generator().manual_seed(t)).prev_sample
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_ddim_clipped_matches_diffusers_clipped_model_output():
    ours = DDIMSampler(NoiseSchedule("linear", 1000), eta=0.5, clip_x0=True)
    ref = diffusers.DDIMScheduler(clip_sample=True, set_alpha_to_one=True, timestep_spacing="trailing")
    ours.set_timesteps(25)
    ref.set_timesteps(25)
    for t in ours.timesteps[[0, 5, -1]].tolist():
        out, x = _inputs(t)
        out = out * 3   # large enough that clipping acts
        a = ours.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        b = ref.step(out, t, x, eta=0.5, use_clipped_model_output=True,
                     generator=torch.Generator().manual_seed(t)).prev_sample
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_ddim_eta0_is_deterministic_and_inverts_exact_noise():
    """With the true noise as model output, deterministic DDIM lands on x_0 (up to float32 error,
    which 1/sqrt(ab_T) amplifies: ~150x for the linear schedule)."""
    sched = NoiseSchedule("linear", 1000)
    ddim = DDIMSampler(sched, eta=0.0)
    ddim.set_timesteps(10)
    x0, noise = _inputs(3)
    x = sched.add_noise(x0, noise, ddim.timesteps[0])
    for t in ddim.timesteps.tolist():
        x = ddim.step(noise, t, x).prev_sample
    torch.testing.assert_close(x, x0, atol=1e-3, rtol=0)


def test_timesteps_and_errors():
    assert make_timesteps(1000, 10, "trailing").tolist() == list(range(999, 0, -100))
    assert make_timesteps(1000, 10, "leading").tolist() == list(range(900, -1, -100))
    with pytest.raises(ConfigError):
        make_timesteps(100, 101)
    with pytest.raises(ConfigError):
        NoiseSchedule("quadratic", 10)
    with pytest.raises(ConfigError):
        DDIMSampler(NoiseSchedule("linear", 10), eta=-1)
