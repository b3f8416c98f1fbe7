"""The batcher: concurrent requests decoded together give each request its unbatched result."""
from __future__ import annotations

import threading

import pytest
import torch

from genlab.models.gpt import GPT, GPTConfig
from genlab.sampling.generate import generate
from genlab.serve.batching import Batcher, Job, QueueFull


def _decode(ids):
    return "".join(chr(97 + i % 26) for i in ids)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=40, block_size=64, n_layer=2, n_head=2, n_embd=32)).eval()


def _job(prompt, max_new, seed, done, events, temperature=1.0, top_p=1.0, stop=(), eos_id=None, penalty=1.0):
    key = len(events)
    events[key] = []

    def emit(kind, payload):
        events[key].append((kind, payload))
        if kind in ("done", "error"):
            done.release()

    return Job(prompt, max_new, emit, _decode, temperature=temperature, top_p=top_p, stop=tuple(stop),
               eos_id=eos_id, seed=seed, repetition_penalty=penalty)


def test_batched_results_equal_unbatched_generate(model):
    """Prompts of different lengths, joining a running batch at different times."""
    torch.manual_seed(1)
    specs = [(torch.randint(0, 40, (n,)).tolist(), m, seed, t, p, r)
             for n, m, seed, t, p, r in [(3, 20, 11, 1.0, 1.0, 1.0), (9, 15, 12, 0.8, 0.9, 1.0),
                                         (1, 25, 13, 0.0, 1.0, 1.3), (17, 12, 14, 1.2, 1.0, 1.0),
                                         (5, 30, 15, 1.0, 0.5, 1.0), (9, 8, 16, 1.0, 1.0, 1.5)]]
    batcher = Batcher(model, max_batch=4, max_queue=16).start()
    done, events = threading.Semaphore(0), {}
    jobs = [_job(p, m, seed, done, events, t, tp, penalty=r) for p, m, seed, t, tp, r in specs]
    batcher.submit(jobs[:2])
    done.acquire()  # the others join a batch that is already running
    batcher.submit(jobs[2:])
    for _ in range(len(jobs) - 1):
        assert done.acquire(timeout=30)
    batcher.stop()
    assert batcher.steps < sum(m for _, m, *_ in specs)  # rows really shared forward passes
    for key, (prompt, m, seed, t, tp, r) in enumerate(specs):
        ref = generate(model, [prompt], m, temperature=t, top_p=tp, seed=seed, decode=_decode,
                       repetition_penalty=r)[0]
        kinds = [k for k, _ in events[key]]
        assert kinds[-1] == "done"
        final = events[key][-1][1]
        assert final.tokens == ref.tokens, f"request {key}"
        assert final.text == ref.text
        assert "".join(x for k, x in events[key] if k == "text") == ref.text  # the stream adds up


def test_stop_strings_and_eos_match_generate(model):
    prompt = [1, 2, 3]
    ref = generate(model, [prompt], 40, seed=5, decode=_decode, stop=["ab", "q"], eos_id=7)[0]
    batcher = Batcher(model).start()
    done, events = threading.Semaphore(0), {}
    batcher.submit([_job(prompt, 40, 5, done, events, stop=["ab", "q"], eos_id=7),
                    _job([4, 5], 10, 6, done, events)])
    assert done.acquire(timeout=30) and done.acquire(timeout=30)
    batcher.stop()
    final = events[0][-1][1]
    assert (final.tokens, final.text, final.finish_reason) == (ref.tokens, ref.text, ref.finish_reason)
    assert "".join(x for k, x in events[0] if k == "text") == ref.text


def test_queue_bound_and_cancel(model):
    batcher = Batcher(model, max_batch=1, max_queue=2)  # not started: nothing leaves the queue
    done, events = threading.Semaphore(0), {}
    batcher.submit([_job([1], 5, 0, done, events), _job([1], 5, 0, done, events)])
    with pytest.raises(QueueFull):
        batcher.submit([_job([1], 5, 0, done, events)])
    batcher._waiting[0].cancel()
    batcher.start()
    assert done.acquire(timeout=30) and done.acquire(timeout=30)
    batcher.stop()
    assert events[0][-1][1].finish_reason == "cancelled"
    assert events[1][-1][1].finish_reason == "length"


def test_left_padded_rows_equal_unpadded_rows(model):
    """models/gpt.py's `pad`: a padded row's logits (prefill and cached steps) equal the row alone."""
    torch.manual_seed(2)
    a, b = torch.randint(0, 40, (1, 5)), torch.randint(0, 40, (1, 9))
    with torch.no_grad():
        x = torch.cat([torch.cat([torch.zeros(1, 4, dtype=torch.long), a], 1), b])
        pad = torch.tensor([4, 0])
        logits, cache = model(x, use_cache=True, pad=pad)
        torch.testing.assert_close(logits[0, 4:], model(a)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logits[1], model(b)[0], atol=1e-5, rtol=1e-5)
        nxt = torch.tensor([[3], [7]])
        step, _ = model(nxt, past_kv=cache, use_cache=True, pad=pad)
        torch.testing.assert_close(step[0, 0], model(torch.cat([a, nxt[:1]], 1))[0, -1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step[1, 0], model(torch.cat([b, nxt[1:]], 1))[0, -1], atol=1e-5, rtol=1e-5)
        assert torch.isfinite(cache[0][0]).all()  # padded slots hold no NaN
