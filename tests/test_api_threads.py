"""A loaded run sampled from several threads at once gives what sequential calls give.

Sampling mutates nothing shared: modules stay in eval mode (set once at load), no global RNG
is forked or seeded (each call draws from generators seeded by its options), and tokenizers
return unknown counts instead of storing them.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import genlab

SENTENCES = ["the cat sat on the mat. ", "a dog ran in the park! ", "we like to read books, "]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("threads")
    g = torch.Generator().manual_seed(0)
    text = "".join(SENTENCES[i] for i in torch.randint(len(SENTENCES), (400,), generator=g).tolist())
    (tmp / "corpus.txt").write_text(text)
    gpt = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16, "batch_size": 8, "max_steps": 15,
           "eval_every": 0, "novelty_samples": 0, "dropout": 0.2}
    genlab.train("gpt", data=tmp / "corpus.txt", overrides=gpt, out=tmp / "gpt", progress=False)
    genlab.train("gan-pattern", overrides={"max_steps": 10, "eval_every": 0}, out=tmp / "pattern", progress=False)
    return genlab.load(tmp / "gpt", device="cpu"), genlab.load(tmp / "pattern", device="cpu")


def _key(out):
    return tuple(out.texts) if hasattr(out, "texts") else out.values.tobytes()


def test_threads_sample_like_sequential_calls(runs):
    gpt, pattern = runs
    calls = [(gpt, dict(n=2, seed=s, max_new_tokens=30, temperature=1.0, top_k=5, stop=["!"])) for s in range(6)]
    calls += [(gpt, dict(n=1, seed=s, prompt="the ", max_new_tokens=20, temperature=0)) for s in range(2)]
    calls += [(pattern, dict(n=300, seed=s)) for s in range(6)]
    sequential = [_key(run.sample(**opts)) for run, opts in calls]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            threaded = list(pool.map(lambda c: _key(c[0].sample(**c[1])), calls))
            assert threaded == sequential
    # nothing was switched back to training mode (dropout would make greedy samples vary)
    assert not any(m.training for m in gpt.recipe.modules.values())


def test_sampling_leaves_the_global_rng_alone(runs):
    gpt, pattern = runs
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    gpt.sample(n=1, max_new_tokens=5)
    pattern.sample(n=10)
    assert torch.equal(torch.rand(3), expected)
    assert np.isfinite(pattern.sample(n=10).values).all()
