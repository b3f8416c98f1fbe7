"""The gpt recipe end to end: train, evaluate, sample, resume exactly, tokenizers, bad input."""
import math

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.cli import main
from genlab.recipes.gpt import GPTRecipe

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16, "batch_size": 8, "max_steps": 40,
        "eval_every": 20, "save_every": 10, "warmup_steps": 5, "lr": 1e-2, "eval_tokens": 512,
        "novelty_samples": 2, "novelty_tokens": 40, "log_every": 5}
SENTENCES = ["the cat sat on the mat. ", "a dog ran in the park! ", "we like to read books, ",
             "rain falls on the town. ", "she sang a quiet song; "]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    order = torch.randint(len(SENTENCES), (600,), generator=g).tolist()
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("".join(SENTENCES[i] for i in order), encoding="utf-8")
    return path


def test_train_evaluate_sample(text_file, tmp_path):
    run = genlab.train("gpt", data=text_file, overrides=TINY, out=tmp_path / "run", progress=False)
    m = run.evaluate()
    text = text_file.read_text()
    counts = torch.tensor([text.count(c) for c in set(text)], dtype=torch.float64)
    unigram = -(counts / counts.sum() * (counts / counts.sum()).log()).sum().item()
    assert m["val_loss"] < 0.7 * unigram  # well beyond letter frequencies: it learned words
    assert m["perplexity"] == pytest.approx(math.exp(m["val_loss"]))
    assert m["bits_per_char"] == pytest.approx(m["val_loss"] / math.log(2))  # one char per token
    assert m["longest_copy_chars"] >= 2 and 0 <= m["copied_word_8gram_share"] <= 1
    loaded = genlab.load(tmp_path / "run", device="cpu")
    out = loaded.sample(prompt="the ", n=2, max_new_tokens=12, temperature=0)
    a, b = out.texts
    assert a == b and a.startswith("the ") and len(a) == 16
    assert out.completions == [a[4:], b[4:]] and out.completion_tokens == [12, 12] and out.prompt_tokens == 4
    s = loaded.sample(n=3, max_new_tokens=20, seed=1, stop=[". "])
    assert len(s.texts) == 3 and all(". " not in t for t in s.texts)
    assert all(r in ("stop", "length") for r in s.finish_reasons)
    assert (tmp_path / "run" / "samples" / "sample-01.txt").is_file()


def test_ddp_matches_one_process_and_accumulation_trains(text_file, tmp_path, torchrun):
    from genlab.engine.rundir import RunDir

    sets = [f"--data={text_file}", "--no-progress", "--set", "n_layer=1", "--set", "n_head=2", "--set", "n_embd=32",
            "--set", "block_size=16", "--set", "batch_size=8", "--set", "max_steps=12", "--set", "log_every=2",
            "--set", "eval_every=0", "--set", "save_every=0", "--set", "novelty_samples=0", "--set", "lr=1e-2"]
    assert main(["train", "gpt", "--out", str(tmp_path / "one"), *sets]) == 0
    out = torchrun("train", "gpt", "--out", str(tmp_path / "two"), *sets)
    assert out.returncode == 0, out.stderr[-2000:]
    losses = lambda run: [r["loss"] for r in RunDir(run).read_metrics() if r.get("kind") == "train"]  # noqa: E731
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 6
    for a, b in zip(one, two):   # the same global batches; DDP averages the two halves' gradients
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (one, two)
    # gradient accumulation: 2 micro-batches of 4 per step, through the same trainer
    assert main(["train", "gpt", "--out", str(tmp_path / "acc"), *sets, "--set", "batch_size=4",
                 "--set", "grad_accum=2"]) == 0
    acc = losses(tmp_path / "acc")
    assert len(acc) == 6 and acc[-1] < acc[0]


def test_resume_is_exact(text_file, tmp_path, monkeypatch):
    cfg = {**TINY, "novelty_samples": 0, "max_steps": 20, "dropout": 0.1}
    genlab.train("gpt", data=text_file, overrides=cfg, out=tmp_path / "a", progress=False)
    original = GPTRecipe.training_step

    def interrupted(self, batch, step):
        if step == 15:  # after the checkpoint of step 10
            raise KeyboardInterrupt
        return original(self, batch, step)

    monkeypatch.setattr(GPTRecipe, "training_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        genlab.train("gpt", data=text_file, overrides=cfg, out=tmp_path / "b", progress=False)
    monkeypatch.setattr(GPTRecipe, "training_step", original)
    genlab.train("gpt", data=text_file, out=tmp_path / "b", resume=True, progress=False)
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_word_and_bpe_tokens(text_file, tmp_path, kind):
    cfg = {**TINY, "max_steps": 4, "eval_every": 0, "novelty_samples": 1, "tokenizer": kind, "tokenizer_vocab": 300}
    run = genlab.train("gpt", data=text_file, overrides=cfg, out=tmp_path / kind, progress=False)
    assert run.recipe.tokenizer.kind == kind
    text = genlab.load(tmp_path / kind, device="cpu").sample(prompt="The cat", n=1, max_new_tokens=5).texts[0]
    assert text.lower().startswith("the cat")


def test_bad_input_is_one_line(text_file, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("too short for a window")
    cases = [
        (["--data", str(tmp_path / "missing.txt")], "not found"),
        (["--data", str(short)], "block_size"),
        (["--data", str(text_file), "--set", "n_embd=30", "--set", "n_head=4"], "divisible"),
        (["--data", str(text_file), "--set", "tokenizer=gpt2"], "tokenizer_files"),
        (["--data", str(text_file), "--set", "tokenizer=bytes"], "tokenizer must be"),
    ]
    for i, (args, message) in enumerate(cases):
        assert main(["train", "gpt", "--no-progress", "--out", str(tmp_path / f"r{i}"), *args]) == 1
        err = capsys.readouterr().err
        assert err.startswith("genlab: error:") and message in err and err.count("\n") == 1, err


def test_stream_and_cli_print_texts(text_file, tmp_path, capsys):
    over = {**TINY, "max_steps": 10, "eval_every": 0, "novelty_samples": 0}
    run = genlab.train("gpt", data=text_file, overrides=over, out=tmp_path / "run", progress=False)
    loaded = genlab.load(run.path, device="cpu")
    opts = dict(prompt="the", max_new_tokens=25, seed=4, temperature=1.0)
    pieces = list(loaded.stream(**opts))
    assert len(pieces) > 1 and "".join(pieces) == loaded.sample(n=1, **opts).completions[0]
    parts = loaded.recipe.lm_parts()
    assert parts.block_size == 16 and parts.eos_id is None and parts.tokenizer is loaded.recipe.tokenizer
    assert main(["sample", str(run.path), "--set", "prompt=the", "max_new_tokens=25", "seed=4",
                 "temperature=1.0", "--stream"]) == 0
    assert capsys.readouterr().out == "the" + "".join(pieces) + "\n"  # the prompt, then the pieces
    assert main(["sample", str(run.path), "--n", "2", "--set", "prompt=the", "max_new_tokens=10"]) == 0
    out = capsys.readouterr().out
    texts = [(run.path / "samples" / "cli-001" / f"sample-0{i}.txt").read_text() for i in (1, 2)]
    assert all(t.startswith("the") and t.rstrip() in out for t in texts)  # the texts reach the terminal
    assert "--- sample 2 of 2 (10 tokens, length) ---" in out


def test_stream_checks_options_before_the_first_piece(text_file, tmp_path):
    from genlab.errors import ConfigError

    over = {**TINY, "max_steps": 2, "eval_every": 0, "novelty_samples": 0}
    run = genlab.train("gpt", data=text_file, overrides=over, out=tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="top_p"):
        run.stream(top_p=2.0)  # raised by the call itself, not by the first next()
    with pytest.raises(ConfigError, match="does not stream"):
        genlab.train("gan-pattern", overrides={"max_steps": 2, "eval_every": 0}, out=tmp_path / "p",
                     progress=False).stream()


def test_cached_corpus_run_equals_uncached(text_file, tmp_path, monkeypatch):
    """The second run on the same text takes tokenizer and tokens from the user cache, and
    trains exactly as the first, which built them."""
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    sets = {**TINY, "max_steps": 6, "eval_every": 0, "save_every": 0, "novelty_samples": 0, "log_every": 1}
    genlab.train("gpt", data=text_file, overrides=sets, out=tmp_path / "cold", progress=False)
    entries = sorted(p.name for p in (tmp_path / "cache" / "corpus").iterdir())
    assert [e.split("-")[0] for e in entries] == ["tok", "tokens"]
    genlab.train("gpt", data=text_file, overrides=sets, out=tmp_path / "warm", progress=False)
    assert sorted(p.name for p in (tmp_path / "cache" / "corpus").iterdir()) == entries
    weights = [load_file(str(tmp_path / run / "model.safetensors")) for run in ("cold", "warm")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert (tmp_path / "cold" / "tokenizer.json").read_text() == (tmp_path / "warm" / "tokenizer.json").read_text()
