"""lstm-lm: shapes, learning, the carried state, exact resume, sampling, bad input."""
import random

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.cli import main as cli
from genlab.errors import ConfigError
from genlab.models.lstm import LSTMConfig, LSTMLanguageModel
from genlab.recipes.lstm_lm import LSTMLMConfig, LSTMRecipe, LSTMSample

TINY = {"n_embd": 16, "hidden": 32, "n_layers": 2, "seq_len": 16, "batch_size": 4, "eval_streams": 2,
        "novelty_chars": 200, "eval_tokens": 2000, "log_every": 5, "lr": 1e-2, "device": "cpu"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: a second thread only adds synchronization (and, on a busy machine, stalls)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _corpus() -> str:
    rng = random.Random(0)
    who, verb, what = ["the cat", "a dog", "anna", "the old man"], ["saw", "liked", "took"], ["the ball", "a hat", "it"]
    lines = [f"{rng.choice(who)} {rng.choice(verb)} {rng.choice(what)}, then went home." for _ in range(400)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("text") / "corpus.txt"
    p.write_text(_corpus(), encoding="utf-8")
    return p


def _train(tmp, data, out="run", **over):
    return genlab.train("lstm-lm", data=str(data), overrides={**TINY, **over}, out=tmp / out, progress=False)


def test_model_shapes():
    m = LSTMLanguageModel(LSTMConfig(vocab_size=11, n_embd=8, hidden=12, n_layers=3))
    logits, (h, c) = m(torch.randint(11, (5, 7)))
    assert logits.shape == (5, 7, 11) and h.shape == c.shape == (3, 5, 12)
    logits2, _ = m(torch.randint(11, (5, 1)), (h, c))
    assert logits2.shape == (5, 1, 11)


def test_loss_falls_and_metrics(tmp_path, corpus_file):
    run = _train(tmp_path, corpus_file, max_steps=80, eval_every=0)
    rows = [r for r in genlab.api.RunDir(run.path).read_metrics() if r.get("kind") == "train"]
    assert rows[-1]["loss"] < 0.6 * rows[0]["loss"]
    m = run.evaluate()
    assert m["perplexity"] == pytest.approx(torch.tensor(m["val_loss"]).exp().item(), rel=1e-5)
    assert m["bits_per_char"] == pytest.approx(m["val_loss"] / 0.6931471805599453, rel=1e-4)  # char tokens: loss / ln 2
    assert m["val_loss"] < 1.6 and 0 <= m["copied_char_8gram_share"] <= 1


def _recipe(tmp_path, corpus_file, **over):
    cfg = genlab.api.build_config(LSTMRecipe, overrides={**TINY, **over}, data=str(corpus_file))
    r = LSTMRecipe(cfg, "cpu", run_dir=tmp_path)
    r.setup(training=True)
    r.optimizers = r.build_optimizers()
    return r


def test_state_carried_between_consecutive_windows(tmp_path, corpus_file):
    r = _recipe(tmp_path, corpus_file)
    lm, seen = r.modules["lm"], []
    forward = lm.forward

    def spy(idx, state=None):
        logits, out = forward(idx, state)
        seen.append((None if state is None else [s.clone() for s in state], [s.detach().clone() for s in out]))
        return logits, out

    lm.forward = spy
    _, windows = r.corpus.stream_layout("train", r.config.seq_len, r.config.batch_size)
    for i in range(windows + 2):
        r.training_step(r.batch(i), i + 1)
    assert seen[0][0] is None and seen[windows][0] is None  # reset at the start of each pass
    for i in range(1, windows + 2):
        if i == windows:
            continue
        assert torch.equal(seen[i][0][0], seen[i - 1][1][0]) and torch.equal(seen[i][0][1], seen[i - 1][1][1])
    # the buffer holds the last window's final state (what a checkpoint saves)
    assert torch.equal(r.modules["state"].h, seen[-1][1][0])


def test_carried_windows_equal_one_long_pass(tmp_path, corpus_file):
    r = _recipe(tmp_path, corpus_file, eval_streams=1)
    r.set_mode(False)
    with torch.no_grad():
        nats, count = r.stream_nll("val", max_tokens=4 * r.config.seq_len)
        ids = torch.as_tensor(r.corpus.val[:count + 1].astype("int64"))[None]
        logits, _ = r.modules["lm"](ids[:, :-1])
        whole = torch.nn.functional.cross_entropy(logits[0], ids[0, 1:], reduction="sum").item()
    assert count == 4 * r.config.seq_len and nats == pytest.approx(whole, rel=1e-5)


def test_resume_equals_uninterrupted(tmp_path, corpus_file):
    over = {"max_steps": 24, "eval_every": 0, "save_every": 0, "dropout": 0.3, "novelty_chars": 0}
    _train(tmp_path, corpus_file, "full", **over)
    _train(tmp_path, corpus_file, "half", **{**over, "max_steps": 12})
    genlab.train("lstm-lm", data=str(corpus_file), overrides={"max_steps": 24}, out=tmp_path / "half",
                 resume=True, progress=False)
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "half" / "model.safetensors")
    assert a.keys() == b.keys() and "state.h" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def word_run(tmp_path_factory, corpus_file):
    tmp = tmp_path_factory.mktemp("word")
    return _train(tmp, corpus_file, tokenizer="word", vocab_size=0, max_steps=30, eval_every=0)


def test_word_sampling(word_run):
    greedy = word_run.sample(n=2, temperature=0, max_new_tokens=12, seed=1, prompt="The cat").texts
    assert greedy[0] == greedy[1] == word_run.sample(n=1, temperature=0, max_new_tokens=12, seed=7,
                                                         prompt="The cat").texts[0]
    assert greedy[0].startswith("The cat")
    varied = word_run.sample(n=4, temperature=1.5, top_k=5, top_p=0.9, max_new_tokens=20, seed=3)
    assert len(set(varied.texts)) > 1
    # row i is drawn with seed + i, like gpt: a batch row equals a single call with that seed
    assert varied.texts[2] == word_run.sample(n=1, temperature=1.5, top_k=5, top_p=0.9, max_new_tokens=20,
                                              seed=5).texts[0]
    assert word_run.sample(n=1, max_new_tokens=3, prompt="the zyzzyva saw a quokka").unknown_prompt_tokens == 2


def test_stop_strings_and_streaming(word_run):
    opts = dict(n=1, max_new_tokens=40, seed=2, temperature=1.0, prompt="Anna")
    full = word_run.sample(**opts).completions[0]
    assert "".join(word_run.stream(**opts)) == full
    stop = full.strip().split(" ")[2]  # a word the unstopped sample contains
    cut = word_run.sample(**opts, stop=[stop])
    assert cut.finish_reasons == ["stop"] and stop not in cut.completions[0]
    assert full.startswith(cut.completions[0])


@pytest.mark.parametrize("bad", [{"temperature": -1}, {"top_k": -2}, {"top_p": 0.0}, {"top_p": 1.5}, {"n": 0}])
def test_invalid_sampling_options(word_run, bad):
    with pytest.raises(ConfigError):
        word_run.sample(**bad)


def test_cli_sample_and_bad_options(word_run, tmp_path, capsys):
    assert cli(["sample", str(word_run.path), "--n", "2", "--out", str(tmp_path / "s"),
                "--set", "prompt=anna saw", "--set", "max_new_tokens=5"]) == 0
    assert (tmp_path / "s" / "sample-02.txt").read_text().startswith("Anna saw")
    capsys.readouterr()
    assert cli(["sample", str(word_run.path), "--n", "1", "--out", str(tmp_path / "u"),
                "--set", "prompt=anna saw a wombat", "--set", "max_new_tokens=3"]) == 0
    assert "1 piece(s) of the prompt are not in the vocabulary" in capsys.readouterr().out
    assert cli(["sample", str(word_run.path), "--set", "top_p=2"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "top_p" in err


def test_cli_bad_corpora(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(bytes(range(256)) * 40)
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n\n  ")
    for path in (empty, binary, blank):
        assert cli(["train", "lstm-lm", "--data", str(path), "--out", str(tmp_path / path.stem), "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("genlab: error:"), err
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("just a few words here\n")
    assert cli(["train", "lstm-lm", "--data", str(tiny), "--out", str(tmp_path / "tiny"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "too few" in err, err


def test_cli_invalid_utf8_trains_with_warning(tmp_path, capsys):
    p = tmp_path / "latin1.txt"
    p.write_bytes(_corpus().replace("anna", "ann\xe9").encode("latin-1"))
    sets = [f"--set={k}={v}" for k, v in {**TINY, "max_steps": 3, "eval_every": 0, "novelty_chars": 0}.items()]
    assert cli(["train", "lstm-lm", "--data", str(p), "--out", str(tmp_path / "r"), "--no-progress", *sets]) == 0
    err = capsys.readouterr().err
    assert "invalid UTF-8 sequence(s) replaced" in err


def test_bpe_tokens_and_config_errors(tmp_path, corpus_file):
    run = _train(tmp_path, corpus_file, tokenizer="bpe", vocab_size=300, max_steps=3, eval_every=0)
    assert run.evaluate()["bits_per_char"] > 0
    with pytest.raises(ConfigError):
        genlab.api.build_config(LSTMRecipe, overrides={"tokenizer": "gpt2"})
    with pytest.raises(ConfigError):
        genlab.api.build_config(LSTMRecipe, overrides={"dropout": 1.0})
    assert LSTMLMConfig().tokenizer == "char" and LSTMSample().temperature == 0.8


def _naive_longest(a: str, b: str) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(i + best + 1, len(a) + 1):
            if a[i:j] not in b:
                break
            best = j - i
    return best


def test_novelty_report():
    from genlab.metrics.text import longest_copied_span, novelty_report

    rng = random.Random(1)
    for _ in range(20):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("abcd ") for _ in range(rng.randint(0, 300)))
        assert longest_copied_span(a, b)[0] == _naive_longest(a, b)
    corpus = _corpus()
    planted = corpus[1000:1150]
    gen = "Zxq vrumble plonk " * 10 + planted.upper() + " glorp fnord " * 10
    r = novelty_report(gen, corpus)
    assert r["longest_copy_chars"] >= len(" ".join(planted.split())) and r["longest_copy"] in " ".join(corpus.split())
    assert 0 < r["word_ngram_share"] < 0.5
    assert novelty_report(corpus[:3000], corpus)["word_ngram_share"] == 1.0


def test_presets_are_valid():
    for name in LSTMRecipe.presets:
        cfg = genlab.api.build_config(LSTMRecipe, preset=name)
        assert cfg.preset == name
    book = genlab.api.build_config(LSTMRecipe, preset="book")
    assert (book.tokenizer, book.n_embd, book.hidden, book.n_layers, book.dropout, book.seq_len) == \
        ("word", 128, 128, 3, 0.2, 100)
