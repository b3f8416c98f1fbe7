"""models/attention.py: float32 attention under CPU bfloat16 autocast, SDPA everywhere else."""
import torch
import torch.nn.functional as F

from genlab.models.attention import attend


def test_attention_runs_in_float32_under_cpu_autocast():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8).bfloat16().requires_grad_() for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = attend(q, k, v, is_causal=True)
    assert y.dtype == torch.float32
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    assert torch.equal(y, ref)
    y.sum().backward()   # gradients reach the bfloat16 inputs, in their dtype
    assert q.grad.dtype == torch.bfloat16 and q.grad.abs().sum() > 0


def test_attention_without_autocast_is_sdpa():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 2, 4, 8) for _ in range(3))
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    assert torch.equal(attend(q, k, v, mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
