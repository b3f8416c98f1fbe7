"""models/clip.py: the contrastive loss by hand, the clamped temperature, <eos> pooling, image pooling."""
import math

import pytest
import torch

from genlab.models.clip import CLIP, POOLS, CLIPConfig, ImageEncoder, MAX_LOGIT_SCALE, clip_loss
from genlab.models.clip import TextEncoder, TextEncoderConfig


def test_clip_loss_by_hand():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    # logits = 2 * img @ txt.T = [[1.2, 2.0], [1.6, 0.0]]; pairs on the diagonal
    rows = (-math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(2.0)))
            - math.log(1 / (math.exp(1.6) + 1))) / 2
    cols = (-math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(1.6)))
            - math.log(1 / (math.exp(2.0) + 1))) / 2
    assert clip_loss(img, txt, 2.0).item() == pytest.approx((rows + cols) / 2, rel=1e-6)


def test_temperature_is_learned_and_clamped():
    m = CLIP(CLIPConfig(image_size=8, image_width=8, vocab_size=300, text_width=16, text_heads=2, embed_dim=8))
    assert m.scale().item() == pytest.approx(1 / 0.07, rel=1e-5) and m.logit_scale.requires_grad
    with torch.no_grad():
        m.logit_scale.fill_(10.0)
    assert m.scale().item() == pytest.approx(math.exp(MAX_LOGIT_SCALE))   # 100


def test_text_encoder_pools_at_eos_and_ignores_padding():
    torch.manual_seed(0)
    enc = TextEncoder(TextEncoderConfig(vocab_size=50, context=12, width=16, layers=1, heads=2, embed_dim=8)).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0, 0], [5, 6, 7, 8, 9, 0]])
    out = enc(ids, torch.tensor([4, 6]))
    alone = enc(ids[:1, :4], torch.tensor([4]))
    torch.testing.assert_close(out[:1], alone)              # padding after <eos> changes nothing (causal)
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("size", [8, 16, 20, 32])
def test_image_encoder_any_size_either_pool(size, pool):
    """The flatten projection is sized from the true final map (20 px -> 10 -> 5 -> 3x3, rounding up)."""
    enc = ImageEncoder(CLIPConfig(image_size=size, image_width=8, embed_dim=6, image_pool=pool))
    assert enc(torch.randn(2, 3, size, size)).shape == (2, 6)
    with pytest.raises(ValueError):
        ImageEncoder(CLIPConfig(image_pool="max"))
