"""Importing Hugging Face GPT-2 checkpoints: logits and greedy text equal transformers' own."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import genlab
from genlab.cli import main
from genlab.errors import DataError, RunDirError
from genlab.importers.gpt2 import read_gpt2_checkpoint
from genlab.models.gpt import GPT
from genlab.sampling.generate import generate
from genlab.tokenizers import bytes_to_unicode

transformers = pytest.importorskip("transformers")

MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n"), ("e", "r"), ("Ġ", "s"), ("o", "n")]


def write_tokenizer(d: Path) -> int:
    """A tiny byte-level BPE vocabulary: 256 byte symbols, 8 merges, <|endoftext|>. Returns its size."""
    symbols = [bytes_to_unicode()[b] for b in range(256)] + ["".join(m) for m in MERGES]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab["<|endoftext|>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (d / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES), encoding="utf-8")
    return len(vocab)


def make_hf_checkpoint(d: Path, safe: bool = True, seed: int = 0):
    d.mkdir(parents=True, exist_ok=True)
    n_vocab = write_tokenizer(d)
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=n_vocab, n_positions=64,
                                  bos_token_id=n_vocab - 1, eos_token_id=n_vocab - 1)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # random biases and LayerNorm gains too, so a missed transpose or bias shows
        for name, p in hf.named_parameters():
            if p.dim() == 1:
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.1)
    hf.save_pretrained(d)
    if not safe:  # the classic layout (transformers < 5 wrote it): a torch pickle of the state_dict
        (d / "model.safetensors").unlink()
        torch.save(hf.state_dict(), d / "pytorch_model.bin")
    return hf


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("gpt2-tiny")
    return d, make_hf_checkpoint(d)


def test_logits_match_transformers(hf_dir, tmp_path):
    d, hf = hf_dir
    cfg, state, tok = read_gpt2_checkpoint(d)
    model = GPT(cfg).eval()
    model.load_state_dict(state)
    a, b = tok.encode("the cat sat on the mat in the sun"), tok.encode("there is the answer, isn't it? ok")
    ids = torch.tensor([a[:16], b[:16]])
    with torch.no_grad():
        ours, theirs = model(ids), hf(ids).logits
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=0)


def test_greedy_generation_matches_hf_generate_through_a_run_dir(hf_dir, tmp_path):
    d, hf = hf_dir
    out = genlab.api.import_gpt2(d, tmp_path / "run")
    run = genlab.load(out, device="cpu")
    tok = run.recipe.tokenizer
    prompt = tok.encode("the answer is")
    with torch.no_grad():
        ref = hf.generate(torch.tensor([prompt]), max_new_tokens=30, do_sample=False,
                          pad_token_id=tok.eos_id, eos_token_id=None)[0, len(prompt):].tolist()
    mine = generate(run.recipe.modules["model"], [prompt], 30, temperature=0)[0].tokens
    assert mine == ref
    # the same through the recipe's sampling options (text = prompt + continuation, greedy)
    text = run.sample(prompt="the answer is", n=1, max_new_tokens=30, temperature=0).texts[0]
    assert text == tok.decode(prompt + ref[: ref.index(tok.eos_id)] if tok.eos_id in ref else prompt + ref)


def test_pytorch_bin_without_prefix_imports_the_same(hf_dir, tmp_path):
    d, hf = hf_dir
    alt = tmp_path / "bin"
    alt.mkdir()
    for f in ("config.json", "vocab.json", "merges.txt"):
        (alt / f).write_bytes((d / f).read_bytes())
    # a GPT2Model-style checkpoint: no `transformer.` prefix, no lm_head, plus old mask buffers
    sd = {k.removeprefix("transformer."): v for k, v in load_file(str(d / "model.safetensors")).items()
          if k != "lm_head.weight"}
    sd["h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
    torch.save(sd, alt / "pytorch_model.bin")
    _, a, _ = read_gpt2_checkpoint(d)
    _, b, _ = read_gpt2_checkpoint(alt)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bin_from_save_pretrained(tmp_path):
    d = tmp_path / "hfbin"
    hf = make_hf_checkpoint(d, safe=False, seed=1)
    assert (d / "pytorch_model.bin").is_file() and not (d / "model.safetensors").exists()
    cfg, state, _ = read_gpt2_checkpoint(d)
    model = GPT(cfg).eval()
    model.load_state_dict(state)
    ids = torch.randint(0, cfg.vocab_size, (1, 20))
    with torch.no_grad():
        assert torch.allclose(model(ids), hf(ids).logits, atol=1e-4, rtol=0)


def _copy(d: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in d.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_import_errors_are_one_line(hf_dir, tmp_path):
    d, _ = hf_dir
    with pytest.raises(DataError, match="no config.json"):
        read_gpt2_checkpoint(tmp_path)
    with pytest.raises(DataError, match="not found"):
        read_gpt2_checkpoint(tmp_path / "nope")
    bad = _copy(d, tmp_path / "bert")
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(DataError, match="not a GPT-2 config"):
        read_gpt2_checkpoint(bad)
    wrong = _copy(d, tmp_path / "wrong")
    c = json.loads((wrong / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps({**c, "n_embd": 48, "n_head": 2}))
    with pytest.raises(DataError, match="shape"):
        read_gpt2_checkpoint(wrong)
    novocab = _copy(d, tmp_path / "novocab")
    (novocab / "merges.txt").unlink()
    with pytest.raises(DataError, match="merges.txt"):
        read_gpt2_checkpoint(novocab)
    noweights = _copy(d, tmp_path / "noweights")
    (noweights / "model.safetensors").unlink()
    with pytest.raises(DataError, match="no GPT-2 weights"):
        read_gpt2_checkpoint(noweights)
    trunc = _copy(d, tmp_path / "trunc")
    (trunc / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(DataError, match="cannot read"):
        read_gpt2_checkpoint(trunc)
    genlab.api.import_gpt2(d, tmp_path / "run")
    with pytest.raises(RunDirError, match="already holds a run"):
        genlab.api.import_gpt2(d, tmp_path / "run")


def test_fine_tune_an_imported_run(hf_dir, tmp_path):
    d, _ = hf_dir
    out = genlab.api.import_gpt2(d, tmp_path / "ft")
    before = load_file(str(out / "model.safetensors"))
    text = tmp_path / "t.txt"
    text.write_text("the answer is in the sun, and the sun is in the answer. " * 40)
    genlab.train("gpt", data=text, out=out, resume=True, progress=False,
                 overrides={"max_steps": 3, "lr": 1e-3, "batch_size": 2, "block_size": 32, "eval_every": 0,
                            "novelty_samples": 0, "warmup_steps": 0})
    after = load_file(str(out / "model.safetensors"))
    assert after["model.wpe.weight"].shape[0] == 32  # the context was cut to the new block_size
    drift = max((after[k] - before[k][:after[k].shape[0]]).abs().max().item() for k in before)
    assert 0 < drift < 0.05  # trained from the imported weights (3 small steps), not from a fresh init


def test_cli_import_sample_and_errors(hf_dir, tmp_path, capsys):
    d, _ = hf_dir
    out = tmp_path / "cli-run"
    assert main(["import", "gpt2", str(d), "--out", str(out)]) == 0
    assert main(["sample", str(out), "--n", "2", "--set", "max_new_tokens=5", "--set", "prompt=the",
                 "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "sample-02.txt").read_text().startswith("the")
    capsys.readouterr()
    assert main(["import", "gpt2", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genlab: error:") and err.count("\n") == 1
    assert main(["sample", str(out), "--set", "top_p=0"]) == 1
    assert "top_p" in capsys.readouterr().err
