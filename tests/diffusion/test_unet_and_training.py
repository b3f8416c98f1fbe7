"""U-Net shapes, parameter count of the book preset, guidance, EMA and a falling loss."""
import copy

import pytest
import torch

from genlab.diffusion import NoiseSchedule, diffusion_loss, drop_labels, guided
from genlab.engine.ema import ema_decay, ema_update
from genlab.models.unet import UNet, UNetConfig, count_parameters, unet_config


def tiny(**kw) -> UNet:
    torch.manual_seed(0)
    return UNet(UNetConfig(**{"image_size": 16, "channels": (8, 16), "groups": 4, "head_channels": 8, **kw}))


@pytest.mark.parametrize("attn", [(), (8,), (16, 8)])
@pytest.mark.parametrize("classes", [0, 3])
def test_unet_shapes(attn, classes):
    m = tiny(attention_resolutions=attn, num_classes=classes, in_channels=1)
    x = torch.randn(5, 1, 16, 16)
    y = torch.tensor([0, 1, 2, 3, 0]) if classes else None   # 3 = the null class
    out = m(x, torch.arange(5), y)
    assert out.shape == x.shape
    n_attn = sum(type(mod).__name__ == "SelfAttention" for mod in m.modules())
    assert n_attn == 1 + 2 * len(attn)    # middle + one per ResBlock on each path at those sizes


def test_unet_scalar_timestep_and_errors():
    m = tiny()
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(m(x, torch.tensor(7)), m(x, torch.tensor([7, 7])))
    with pytest.raises(ValueError):
        m(x, torch.tensor([1, 2]), torch.tensor([0, 0]))    # unconditional model given labels
    with pytest.raises(ValueError):
        UNet(UNetConfig(image_size=18, channels=(8, 16, 32)))


def test_text_projection_starts_as_far_apart_as_class_labels():
    """The linear text projection (the default) maps two unit-length text embeddings about as far
    apart as two class-embedding rows; the older MLP started them tens of times closer, which
    left a 2-pixel detail (the faces' smile) barely conditioned (BENCHMARKS.md, text to image)."""
    torch.manual_seed(1)
    y = torch.nn.functional.normalize(torch.randn(64, 16), dim=1)
    labels = tiny(num_classes=2).class_emb.weight[:2]
    label_gap = (labels[0] - labels[1]).norm()
    gaps = {}
    for kind in ("linear", "mlp"):
        emb = tiny(text_dim=16, text_projection=kind).text_emb(y)
        gaps[kind] = (emb[:32] - emb[32:]).norm(dim=1).mean()
        assert emb.shape == (64, 32)
    assert 0.5 * label_gap < gaps["linear"] < 2 * label_gap
    assert gaps["mlp"] < 0.25 * gaps["linear"]
    with pytest.raises(ValueError):
        tiny(text_dim=16, text_projection="film")


def test_book_preset_parameter_count():
    with torch.device("meta"):   # no memory, no init time
        m = UNet(unet_config("book"))
    n = count_parameters(m)
    print(f"book U-Net: {n:,} parameters")
    assert 130e6 < n < 136e6


def test_guidance_scales():
    m = tiny(num_classes=2).eval()
    for p in m.parameters():    # the zero-initialised output conv would make every output 0
        torch.nn.init.normal_(p, std=0.05)
    x, t, y = torch.randn(3, 3, 16, 16), torch.tensor([5, 5, 5]), torch.tensor([0, 1, 1])
    null = torch.full_like(y, 2)
    with torch.no_grad():
        cond, uncond = m(x, t, y), m(x, t, null)
        torch.testing.assert_close(guided(m, y, 1.0, 2)(x, t), cond)
        torch.testing.assert_close(guided(m, y, 0.0, 2)(x, t), uncond)
        torch.testing.assert_close(guided(m, y, 3.0, 2)(x, t), uncond + 3 * (cond - uncond), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(cond, uncond)


def test_drop_labels_rate():
    y = torch.zeros(10000, dtype=torch.long)
    d = drop_labels(y, 0.2, 5, torch.Generator().manual_seed(0))
    assert set(d.unique().tolist()) == {0, 5}
    assert abs((d == 5).float().mean().item() - 0.2) < 0.02


def test_ema_update_math():
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = copy.deepcopy(ema.state_dict())
    ema_update(ema, model, 0.9)
    for name, p in model.state_dict().items():
        torch.testing.assert_close(ema.state_dict()[name], 0.9 * before[name] + 0.1 * p)
    assert ema_decay(0) == pytest.approx(0.1) and ema_decay(10**6, 0.999) == 0.999
    assert ema_decay(5, 0.999, warmup=False) == 0.999


@pytest.mark.parametrize("pred,loss", [("eps", "l2"), ("v", "huber"), ("x0", "l1")])
def test_loss_falls_on_tiny_data(pred, loss):
    torch.manual_seed(0)
    sched = NoiseSchedule("cosine", 100)
    data = torch.zeros(16, 1, 8, 8)
    data[:, :, 2:6, 2:6] = 1.0           # one white square
    m = UNet(UNetConfig(image_size=8, in_channels=1, channels=(16, 32), attention_resolutions=(), groups=4))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    t_eval = torch.randint(0, 100, (16,), generator=g)
    n_eval = torch.randn(16, 1, 8, 8, generator=g)

    def eval_loss():
        with torch.no_grad():
            return diffusion_loss(m(sched.add_noise(data, n_eval, t_eval), t_eval),
                                  sched.target(pred, data, n_eval, t_eval), loss).item()

    first = eval_loss()
    for _ in range(40):
        t = torch.randint(0, 100, (16,), generator=g)
        noise = torch.randn(16, 1, 8, 8, generator=g)
        l = diffusion_loss(m(sched.add_noise(data, noise, t), t), sched.target(pred, data, noise, t), loss)
        opt.zero_grad()
        l.backward()
        opt.step()
    assert eval_loss() < 0.7 * first
