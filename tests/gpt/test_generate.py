"""Generation: cache vs no cache, sampling options, sliding window, stop strings, batches, streaming."""
import pytest
import torch

from genlab.errors import ConfigError
from genlab.models.gpt import GPT, GPTConfig
from genlab.sampling.generate import generate, stream

VOCAB = 30


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=VOCAB, block_size=16, n_layer=2, n_head=2, n_embd=32)).eval()
    with torch.no_grad():  # peaky, varied distributions instead of the near-uniform ones of a fresh init
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.4)
    return m


def decode(ids):
    return "".join(chr(ord("a") + i % 26) for i in ids)


PROMPTS = [[1, 2, 3], [4, 5, 6, 7, 8], [9] * 3, list(range(25))]  # the last is longer than the context


@pytest.mark.parametrize("slide", [1, 5])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cache_equals_no_cache_including_a_sliding_window(model, slide, temperature):
    kw = dict(temperature=temperature, top_k=12, seed=7, slide=slide)
    cached = generate(model, PROMPTS, 40, **kw)  # 40 new tokens: the 16-token window slides
    plain = generate(model, PROMPTS, 40, use_cache=False, **kw)
    assert [g.tokens for g in cached] == [g.tokens for g in plain]
    assert all(len(g.tokens) == 40 and g.finish_reason == "length" for g in cached)


@pytest.mark.parametrize("weights", ["float32", "float16"])
def test_cache_equals_no_cache_with_the_decoding_layouts(model, weights):
    """genlab.load lays linear layers out for decoding (sampling/weights.py); float16 weights take
    another kernel for one row (cached steps) than for many (the uncached window): same tokens."""
    import copy

    from genlab.sampling.weights import lay_out_for_decoding

    laid_out = lay_out_for_decoding(copy.deepcopy(model), weights)
    cached = generate(laid_out, PROMPTS, 40, temperature=0)
    assert [g.tokens for g in cached] == [g.tokens for g in generate(laid_out, PROMPTS, 40, temperature=0,
                                                                        use_cache=False)]
    assert [g.tokens for g in cached] == [g.tokens for g in generate(model, PROMPTS, 40, temperature=0)]


def test_batch_rows_equal_single_prompt_calls(model):
    batch = generate(model, PROMPTS, 20, temperature=0.9, top_p=0.9, seed=3)
    for i, p in enumerate(PROMPTS):
        assert generate(model, [p], 20, temperature=0.9, top_p=0.9, seed=3 + i)[0].tokens == batch[i].tokens


def test_rows_leaving_the_batch_early_equal_single_prompt_calls(model):
    """Rows stop at different steps (a stop string), so the cache drops rows mid-generation."""
    kw = dict(temperature=1.0, seed=3, stop=["x"], decode=decode)
    prompts = [[1, 2, 3], [9, 9, 9], [4, 4, 4], [7, 1, 2]]  # one length: one batch
    batch = generate(model, prompts, 30, **kw)
    assert len({len(g.tokens) for g in batch}) > 2
    for i, p in enumerate(prompts):
        assert generate(model, [p], 30, **{**kw, "seed": 3 + i})[0].tokens == batch[i].tokens


def test_sampling_options(model):
    p = [[1, 2, 3]]
    greedy = generate(model, p, 25, temperature=0)[0].tokens
    assert generate(model, p, 25, temperature=1.3, top_k=1, seed=5)[0].tokens == greedy
    assert generate(model, p, 25, temperature=1.3, top_p=1e-6, seed=5)[0].tokens == greedy
    a = generate(model, p, 25, temperature=1.0, seed=11)[0].tokens
    assert a == generate(model, p, 25, temperature=1.0, seed=11)[0].tokens
    assert a != generate(model, p, 25, temperature=1.0, seed=12)[0].tokens
    assert generate(model, p, 0)[0].tokens == []
    for bad in [dict(temperature=-1), dict(top_k=-1), dict(top_p=0.0), dict(top_p=1.5), dict(max_new_tokens=-1),
                dict(slide=0), dict(slide=17), dict(stop=[""])]:
        with pytest.raises(ConfigError):
            generate(model, p, **{"max_new_tokens": 5, "decode": decode, **bad})
    with pytest.raises(ConfigError, match="empty prompt"):
        generate(model, [[]], 5)
    assert generate(model, [[]], 5, eos_id=0, temperature=0)[0].tokens == generate(model, [[0]], 5, temperature=0)[0].tokens


def test_stop_strings_and_eos(model):
    full = generate(model, [[1, 2, 3]], 40, temperature=1.0, seed=2, decode=decode)[0]
    assert full.finish_reason == "length" and full.text == decode(full.tokens)
    stop = full.text[10:12]
    cut = generate(model, [[1, 2, 3]], 40, temperature=1.0, seed=2, decode=decode, stop=["@@", stop])[0]
    assert cut.finish_reason == "stop" and cut.text == full.text[:full.text.index(stop)]
    assert cut.tokens == full.tokens[:len(cut.text) + 2]  # generation ended with the token completing it
    eos = full.tokens[5]
    ended = generate(model, [[1, 2, 3]], 40, temperature=1.0, seed=2, eos_id=eos)[0]
    assert ended.finish_reason == "eos" and ended.tokens == full.tokens[:full.tokens.index(eos)]


def test_stream_matches_generate(model):
    kw = dict(temperature=1.0, seed=4, top_k=8)
    ref = generate(model, [list(range(20))], 30, decode=decode, **kw)[0]
    assert list(stream(model, list(range(20)), 30, **kw)) == ref.tokens
    pieces = list(stream(model, list(range(20)), 30, decode=decode, **kw))
    assert "".join(pieces) == ref.text and len(pieces) > 5  # incremental, not one blob
    stop = ref.text[8:11]
    cut = generate(model, [list(range(20))], 30, decode=decode, stop=stop, **kw)[0]
    assert "".join(stream(model, list(range(20)), 30, decode=decode, stop=stop, **kw)) == cut.text


def test_repetition_penalty_discourages_repeats(model):
    from genlab.sampling.logits import penalize_repetition

    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    out = penalize_repetition(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, 3.0]]  # positive halved, negative doubled, unseen kept
    plain = generate(model, [[1, 2, 3]], 40, temperature=0)[0].tokens
    penalized = generate(model, [[1, 2, 3]], 40, temperature=0, repetition_penalty=3.0)[0].tokens
    assert len(set(penalized)) > len(set(plain))
    with pytest.raises(ConfigError):
        generate(model, [[1]], 5, repetition_penalty=0)


def test_a_recurrent_model_decodes_through_the_same_driver():
    """An LSTM, its (h, c) state as the cache: cache equals recomputation, and batch rows (which
    leave the batch at different steps, dropping their rows of the state) equal single calls."""
    from genlab.models.lstm import LSTMConfig, LSTMLanguageModel
    from genlab.sampling.recurrent import RecurrentDecoder

    torch.manual_seed(0)
    lm = RecurrentDecoder(LSTMLanguageModel(LSTMConfig(VOCAB, n_embd=16, hidden=32, n_layers=2, dropout=0.0)))
    lm.eval()
    kw = dict(temperature=1.0, seed=3, stop=["c", "q"], decode=decode)
    batch = generate(lm, PROMPTS[:3], 30, **kw)
    assert {g.finish_reason for g in batch} >= {"stop"}
    assert len({len(g.tokens) for g in batch}) > 1  # rows finished at different steps
    for i, p in enumerate(PROMPTS[:3]):
        single = generate(lm, [p], 30, **{**kw, "seed": 3 + i})[0]
        assert single.tokens == batch[i].tokens
        assert generate(lm, [p], 30, use_cache=False, **{**kw, "seed": 3 + i})[0].tokens == single.tokens
    assert "".join(stream(lm, PROMPTS[0], 30, **kw)) == batch[0].text
