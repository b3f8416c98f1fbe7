"""The GPT model: init, weight tying, KV cache, and that it learns."""
import math

import pytest
import torch
import torch.nn.functional as F

from genlab.models.gpt import GPT, GPTConfig


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{"vocab_size": 40, "block_size": 24, "n_layer": 2, "n_head": 2, "n_embd": 32, **kw}))


def test_init_is_applied():
    m = GPT(GPTConfig(vocab_size=512, block_size=64, n_layer=8, n_head=4, n_embd=256))
    assert abs(m.h[0].mlp.c_fc.weight.std().item() - 0.02) < 0.002
    assert abs(m.wte.weight.std().item() - 0.02) < 0.002
    # residual projections: 0.02 / sqrt(2 n_layer) = 0.005
    assert abs(m.h[3].attn.c_proj.weight.std().item() - 0.02 / math.sqrt(16)) < 0.0005
    assert abs(m.h[3].mlp.c_proj.weight.std().item() - 0.02 / math.sqrt(16)) < 0.0005
    assert m.h[0].attn.c_attn.bias.abs().max() == 0 and torch.all(m.ln_f.weight == 1)


def test_weight_tying_and_options():
    m = tiny()
    assert m.lm_head.weight is m.wte.weight
    untied = tiny(tie_weights=False, bias=False)
    assert untied.lm_head.weight is not untied.wte.weight and untied.h[0].attn.c_attn.bias is None
    assert untied.num_params() > m.num_params()
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)


def test_kv_cache_equals_full_forward():
    m = tiny().eval()
    x = torch.randint(0, 40, (3, 20))
    with torch.no_grad():
        full = m(x)
        parts, cache = [], None
        for a, b in [(0, 7), (7, 8), (8, 15), (15, 20)]:  # a prefill, single steps and chunks
            logits, cache = m(x[:, a:b], past_kv=cache, use_cache=True)
            parts.append(logits)
        assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)
        assert torch.allclose(m(x, last_only=True)[:, 0], full[:, -1], atol=1e-6)
    assert len(cache) == 2 and cache[0][0].shape == (3, 2, 20, 16)
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 25, dtype=torch.long))


def test_kv_buffers_filled_in_place_equal_the_tuple_cache():
    m = tiny().eval()
    x = torch.randint(0, 40, (3, 20))
    with torch.no_grad():
        full = m(x)
        buffers = m.new_cache(3, 20)
        parts = []
        for a, b in [(0, 7), (7, 8), (8, 15), (15, 20)]:
            logits, cache = m(x[:, a:b], past_kv=buffers, use_cache=True)
            assert cache is buffers and buffers.length == b
            parts.append(logits)
        assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)
        _, tuple_cache = m(x, use_cache=True)
        assert torch.allclose(buffers.k[1], tuple_cache[1][0], atol=1e-6)
        # rows kept by select_cache decode on as those rows alone
        kept = m.select_cache(m(x[:, :10], past_kv=m.new_cache(3, 12), use_cache=True)[1], torch.tensor([2, 0]))
        logits, _ = m(x[[2, 0], 10:11], past_kv=kept, use_cache=True)
        assert torch.allclose(logits[:, 0], full[[2, 0], 10], atol=1e-5)
        with pytest.raises(ValueError, match="capacity"):
            m(x[:, :3], past_kv=kept, use_cache=True)  # 11 filled + 3 > 12


def test_causal_future_tokens_do_not_change_the_past():
    m = tiny().eval()
    x = torch.randint(0, 40, (1, 16))
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % 40
    with torch.no_grad():
        assert torch.allclose(m(x)[0, :10], m(y)[0, :10], atol=1e-6)


def test_learns_a_sequence_with_bf16_autocast():
    m = tiny(dropout=0.1)
    seq = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3]])
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = m(seq[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), seq[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 3.0 and losses[-1] < 0.5
