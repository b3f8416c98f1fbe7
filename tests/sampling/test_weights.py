"""Linear layers laid out for decoding: what changes (the linear layers only) and the equality kept."""
import copy

import pytest
import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.models.gpt import GPT, GPTConfig
from genlab.sampling.generate import generate
from genlab.sampling.weights import ONEDNN, Float16Linear, Float32Linear, lay_out_for_decoding


@pytest.fixture(scope="module")
def models():
    """A GPT with GPT-2's init (std 0.02: flat next-token distributions, the hardest case for
    greedy agreement) and its float16-weight copy."""
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=500, block_size=64, n_layer=4, n_head=4, n_embd=128)).eval()
    return m, lay_out_for_decoding(copy.deepcopy(m), "float16")


def test_only_linear_layers_change(models):
    m, h = models
    assert isinstance(h.h[0].attn.c_attn, Float16Linear) and isinstance(h.lm_head, Float16Linear)
    assert h.h[0].mlp.c_fc.weight.dtype == torch.float16 and h.h[0].mlp.c_fc.bias.dtype == torch.float32
    assert h.wte.weight.dtype == h.ln_f.weight.dtype == torch.float32  # the tied embedding keeps float32
    assert torch.equal(h.lm_head.weight, m.wte.weight.half())
    assert not any(p.requires_grad for p in h.parameters())
    t = lay_out_for_decoding(copy.deepcopy(m))  # float32: the same weights, another kernel
    assert isinstance(t.h[1].mlp.c_proj, Float32Linear) and torch.equal(t.h[1].mlp.c_proj.weight,
                                                                        m.h[1].mlp.c_proj.weight)
    assert t.lm_head.weight is t.wte.weight  # still tied
    # float16's copy of a tied weight is a buffer: the parameter count stays the trained model's
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(t) == count(h) == count(m) and "lm_head.weight" not in h.state_dict()
    with pytest.raises(ConfigError, match="weights must be one of"):
        lay_out_for_decoding(m, "int3")


def test_one_row_and_many_rows_match_float32():
    torch.manual_seed(1)
    lin = nn.Linear(96, 200)
    f16, t = Float16Linear(lin), Float32Linear(lin)
    with torch.no_grad():
        for x in (torch.randn(1, 1, 96), torch.randn(2, 2, 96), torch.randn(3, 5, 96)):  # float16 kernel: 1, 4 rows
            y = f16(x)
            assert y.dtype == torch.float32 and y.shape == lin(x).shape
            assert torch.allclose(y, lin(x), atol=2e-3, rtol=0)
            assert not torch.equal(y, lin(x))  # it does compute with the rounded weights
            assert torch.allclose(t(x), lin(x), atol=1e-5, rtol=0)


def test_large_float32_weights_go_through_onednn_with_equal_tokens():
    """Weights of ONEDNN_MIN_WEIGHT elements or more take oneDNN's kernel (where PyTorch has it):
    the same logits to float rounding, the same greedy tokens, cache or no cache."""
    torch.manual_seed(3)
    m = GPT(GPTConfig(vocab_size=100, block_size=32, n_layer=1, n_head=4, n_embd=256)).eval()
    t = lay_out_for_decoding(copy.deepcopy(m))
    assert t.h[0].mlp.c_fc.onednn == ONEDNN and not t.h[0].attn.c_attn.onednn  # 1024x256 vs 768x256
    prompts = torch.randint(0, 100, (3, 6), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(t(prompts), m(prompts), atol=1e-5, rtol=0)
    ref = [g.tokens for g in generate(m, prompts.tolist(), 20, temperature=0)]
    assert [g.tokens for g in generate(t, prompts.tolist(), 20, temperature=0)] == ref
    assert [g.tokens for g in generate(t, prompts.tolist(), 20, temperature=0, use_cache=False)] == ref


def test_logits_within_tolerance_and_greedy_tokens_equal_float32(models):
    """The equality float16 weights keep (stated in BENCHMARKS.md for the GPT-2-small shape):
    logits within 0.005 of float32 (their spread here: std 0.23), greedy continuations equal to
    float32's for at least 15 of 16 prompts."""
    m, h = models
    g = torch.Generator().manual_seed(2)
    prompts = torch.randint(0, 500, (16, 8), generator=g)
    with torch.no_grad():
        full, full16 = m(prompts), h(prompts)
        assert (full - full16).abs().max() < 0.005 and full.std() > 0.2
        cache, cache16 = m.new_cache(1, 9), h.new_cache(1, 9)  # one row: the float16 kernel
        m(prompts[:1, :7], past_kv=cache, use_cache=True), h(prompts[:1, :7], past_kv=cache16, use_cache=True)
        step, step16 = m(prompts[:1, 7:], past_kv=cache)[0], h(prompts[:1, 7:], past_kv=cache16)[0]
        assert (step - step16).abs().max() < 0.005
    same = sum(generate(m, [p], 40, temperature=0)[0].tokens == generate(h, [p], 40, temperature=0)[0].tokens
               for p in prompts.tolist())
    assert same >= 15
