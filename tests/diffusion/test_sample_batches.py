import pytest
import torch

from genlab.diffusion import NoiseSchedule, make_sampler, sample_batches
from genlab.errors import ConfigError


def test_make_sampler_by_name_sets_its_timesteps():
    sched = NoiseSchedule("cosine", 20)
    assert len(make_sampler("ddpm", sched).timesteps) == 20
    assert len(make_sampler("ddim", sched, ddim_steps=50).timesteps) == 20   # capped at T
    assert len(make_sampler("ddim", sched, steps=5).timesteps) == 5
    with pytest.raises(ConfigError):
        make_sampler("ddim", sched, steps=21)


def test_sample_batches_is_seeded_clamped_and_keeps_x_t():
    model = lambda x, t, y=None: 0.1 * x   # noqa: E731 - a fixed "network"
    s = make_sampler("ddim", NoiseSchedule("cosine", 20), steps=4, eta=1.0)
    a, kept = sample_batches(model, s, 6, (1, 4, 4), torch.Generator().manual_seed(0), keep=(19,), batch_size=4)
    b, _ = sample_batches(model, s, 6, (1, 4, 4), torch.Generator().manual_seed(0), batch_size=4)
    c, _ = sample_batches(model, s, 6, (1, 4, 4), torch.Generator().manual_seed(1), batch_size=4)
    assert a.shape == (6, 1, 4, 4) and a.abs().max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(kept) == {19} and kept[19].shape == (4, 1, 4, 4)   # the first batch only
