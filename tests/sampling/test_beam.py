"""Greedy and beam-search decoding of encoder-decoder models."""
import pytest
import torch

from genlab.errors import ConfigError
from genlab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from genlab.sampling.beam import beam_search, greedy_decode, greedy_stream

PAD, BOS, EOS = 0, 1, 2


def model(seed: int) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(Seq2SeqConfig(src_vocab=11, tgt_vocab=11, pad_id=PAD, d_model=16, n_head=2, n_enc=1, n_dec=2,
                                 d_ff=32, dropout=0.0, max_len=40)).eval()


def sources() -> torch.Tensor:
    return torch.tensor([[5, 6, 7, 8, EOS], [9, 3, EOS, PAD, PAD], [4, 4, 4, 10, EOS]])


def score(m: Seq2Seq, src: torch.Tensor, hyp: list[int], limit: int) -> float:
    """Log-probability of hyp + </s> given one source row; </s> at the length limit is forced (free)."""
    with torch.no_grad():
        logp = torch.log_softmax(m(src[None], torch.tensor([[BOS] + hyp]))[0], -1)
    total = float(sum(logp[t, tok] for t, tok in enumerate(hyp)))
    return total if len(hyp) + 1 >= limit else total + float(logp[len(hyp), EOS])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_one_equals_greedy(seed):
    m, src = model(seed), sources()
    greedy = greedy_decode(m, src, BOS, EOS, PAD, max_len_ratio=2.0, max_len_extra=3)
    assert beam_search(m, src, BOS, EOS, PAD, beam=1, length_penalty=0.0, max_len_ratio=2.0,
                       max_len_extra=3) == greedy
    # the stream yields the same tokens, step by step
    steps = torch.stack(list(greedy_stream(m, src, BOS, EOS, PAD, 2.0, 3)), 1).tolist()
    assert [row[:row.index(EOS)] if EOS in row else row for row in steps] == greedy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_beam_as_wide_as_all_hypotheses_finds_the_most_likely_one(seed):
    """With at most 2 tokens + </s> and 11 symbols there are 1 + 10 + 100 hypotheses; a beam of 121
    keeps them all, so it must return the exhaustive search's best."""
    import itertools

    m, src = model(seed), torch.tensor([5, 6, 7, 8, EOS])
    limit = 3  # int(5 * 0.1) + 3 tokens, </s> included
    words = [t for t in range(11) if t != EOS]
    every = [list(h) for n in range(limit) for h in itertools.product(words, repeat=n)]
    best = max(every, key=lambda h: score(m, src, h, limit))
    found = beam_search(m, src[None], BOS, EOS, PAD, beam=121, length_penalty=0.0, max_len_ratio=0.1,
                        max_len_extra=3)[0]
    assert score(m, src, found, limit) == pytest.approx(score(m, src, best, limit), abs=1e-5)
    greedy = greedy_decode(m, src[None], BOS, EOS, PAD, 0.1, 3)[0]
    assert score(m, src, found, limit) >= score(m, src, greedy, limit) - 1e-5


def test_length_limits_and_batch_independence():
    m, src = model(3), sources()
    for hyps in (greedy_decode(m, src, BOS, EOS, PAD, 1.0, 1), beam_search(m, src, BOS, EOS, PAD, 3, 0.6, 1.0, 1)):
        lengths = (src != PAD).sum(1).tolist()
        # at most ratio * source + extra tokens, </s> included
        assert all(len(h) + 1 <= n + 1 for h, n in zip(hyps, lengths))
    alone = [beam_search(m, src[i:i + 1], BOS, EOS, PAD, 3, 0.6, 2.0, 3)[0] for i in range(len(src))]
    assert beam_search(m, src, BOS, EOS, PAD, 3, 0.6, 2.0, 3) == alone


def test_bad_options():
    with pytest.raises(ConfigError, match="beam"):
        beam_search(model(0), sources(), BOS, EOS, PAD, beam=0)
