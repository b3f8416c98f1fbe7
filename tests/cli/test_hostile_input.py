"""Issue 9's hostile-user commands as a regression suite: each gives one `genlab: error:` line
(exit 1), and nothing already saved changes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from genlab.cli import main
from genlab.engine.config import config_dict
from genlab.engine.rundir import RunDir
from genlab.recipes import get_recipe

TINY = ["--set", "max_steps=20", "--set", "save_every=10", "--set", "eval_every=10", "--set", "eval_samples=200",
        "--no-progress"]


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip()


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("genlab: error:")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, (code, err)
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "curve"
    assert main(["train", "gan-curve", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def copy(trained, tmp_path) -> Path:
    shutil.copytree(trained, tmp_path / "copy")
    return tmp_path / "copy"


# -- item 4: bad --set values fail before anything is written --------------------------------------
@pytest.mark.parametrize("item,needle", [
    ("seed=-1", "seed"), ("seed=99999999999999999999999", "seed"), ("device=meta", "device"),
    ("x_max=inf", "x_max"), ("hidden=-3", "hidden"), ("coverage_bins=0", "coverage_bins"),
    ("fn=" + "9" * 400 + " + x", "too large"),
    # item 5: nonsense that used to train with exit 0
    ("latent_dim=0", "latent_dim"), ("hidden=0", "hidden"), ("warmup_steps=-5", "warmup_steps"),
])
def test_bad_set_values_fail_before_writing(capsys, tmp_path, item, needle):
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--set", item, "--out", tmp_path / "r"), needle)
    assert not (tmp_path / "r").exists()


def test_out_of_memory_is_one_line(capsys, tmp_path, monkeypatch):
    from genlab.recipes.toy_gans import CurveGANRecipe

    def oom(self, index):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(CurveGANRecipe, "batch", oom)
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--set", "batch_size=100000000",
                                   "--out", tmp_path / "r", "--no-progress"), "out of memory")


@pytest.mark.parametrize("content,needle", [
    ("\n".join(str(i * 5) for i in range(20)) + "\n99999999999999999999999\n", "integers must lie in [0, 100)"),
])
def test_pattern_data_with_a_huge_integer(capsys, tmp_path, content, needle):
    (tmp_path / "n.txt").write_text(content)
    assert_one_line_error(*run_cli(capsys, "train", "gan-pattern", "--data", tmp_path / "n.txt",
                                   "--out", tmp_path / "r"), needle)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_curve_data_with_non_finite_values(capsys, tmp_path, bad):
    (tmp_path / "c.csv").write_text("x,y\n" + "".join(f"{i},{i * 2}\n" for i in range(20)) + f"3,{bad}\n")
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--data", tmp_path / "c.csv",
                                   "--out", tmp_path / "r"), "line 22 holds a non-finite number")


def test_device_file_is_not_data(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--data", "/dev/zero", "--out", tmp_path / "r"),
                          "not a regular file")


@pytest.mark.parametrize("args,needle", [
    (["--n", "-1"], "n must be in [1, 100000]"), (["--n", "0"], "n must be in [1, 100000]"),
    (["--n", "1000000000"], "n must be in [1, 100000]"), (["--seed", "99999999999999999999999"], "seed"),
    (["--n", "abc"], "invalid int value: 'abc'"), (["--which", "bogus"],
     "which must be one of best, last, averaged, got 'bogus'"),
])
def test_bad_sample_arguments(capsys, trained, args, needle):
    assert_one_line_error(*run_cli(capsys, "sample", trained, *args), needle)


def test_sample_and_train_out_naming_a_file(capsys, trained, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert_one_line_error(*run_cli(capsys, "sample", trained, "--out", f), "is a file")
    assert_one_line_error(*run_cli(capsys, "sample", trained, "--out", f / "sub"), "Not a directory")
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--out", f), "is a file")
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--out", f / "sub"), "which is a file")
    assert f.read_text() == "x"


def test_usage_errors_are_one_line_exit_1(capsys):
    assert_one_line_error(*run_cli(capsys, "train"), "required: recipe")
    assert_one_line_error(*run_cli(capsys, "nonsense"), "invalid choice")


# -- item 4: broken run directories ---------------------------------------------------------------
def _config_5(run: Path) -> None:
    (run / "config.toml").write_text('config = 5\n[genlab]\nrecipe = "gan-curve"\n')


def _recipe_list(run: Path) -> None:
    text = (run / "config.toml").read_text().replace('recipe = "gan-curve"', 'recipe = ["gan-curve"]')
    (run / "config.toml").write_text(text)


def _negative_hidden(run: Path) -> None:
    text = (run / "config.toml").read_text().replace("hidden = 64", "hidden = -3")
    (run / "config.toml").write_text(text)


def _step_abc(run: Path) -> None:
    for p in (run / "model.safetensors", run / "best" / "model.safetensors"):
        save_file(load_file(str(p)), str(p), metadata={"step": "abc", "format": "genlab"})


def _int64_tensor(run: Path) -> None:
    for p in (run / "model.safetensors", run / "best" / "model.safetensors"):
        t = load_file(str(p))
        k = sorted(t)[0]
        t[k] = t[k].to(torch.int64)
        save_file(t, str(p), metadata={"step": "20", "format": "genlab"})


def _nan_weights(run: Path) -> None:
    for p in (run / "model.safetensors", run / "best" / "model.safetensors"):
        t = load_file(str(p))
        k = sorted(t)[0]
        t[k] = torch.full_like(t[k], float("nan"))
        save_file(t, str(p), metadata={"step": "20", "format": "genlab"})


@pytest.mark.parametrize("breaker,commands,needle", [
    (_config_5, ["sample", "eval", "info", "resume"], "[config] must be a table"),
    (_recipe_list, ["sample", "eval", "info", "resume"], "[genlab] must hold recipe"),
    (_negative_hidden, ["sample", "eval", "info", "resume"], "hidden must be in [1, inf), got -3"),
    (_step_abc, ["sample", "eval", "info"], "corrupt or truncated checkpoint"),
    (_int64_tensor, ["sample", "eval", "info"], "is int64, the model needs float32"),
    (_nan_weights, ["sample", "eval", "info"], "are not finite"),
])
def test_broken_run_directories(capsys, copy, breaker, commands, needle):
    breaker(copy)
    before = snapshot(copy)
    for command in commands:
        args = ["train", "gan-curve", "--resume", "--out", copy] if command == "resume" else [command, copy]
        assert_one_line_error(*run_cli(capsys, *args), needle)
    assert snapshot(copy) == before


@pytest.mark.parametrize("state,needle", [
    ({"format": 1}, "not a complete genlab state file"),
    ({"format": 1, "step": 3, "payload": Path("x")}, "not a genlab state file (it holds objects genlab never writes); "
                                                     "refused"),
])
def test_foreign_state_refused_before_anything_changes(capsys, copy, state, needle):
    torch.save(state, copy / "state.pt")
    before = snapshot(copy)
    line = assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--resume", "--out", copy,
                                          "--set", "max_steps=40"), needle)
    assert "weights_only" not in line
    assert snapshot(copy) == before  # max_steps not written to config.toml


# -- item 2: a rejected resume leaves the run as it was -----------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["--set", "hidden=128"], "--resume cannot change hidden (64 -> 128)"),
    (["--preset", "book"], "--resume cannot change"),
    (["--preset", "nope"], "unknown preset 'nope'"),
])
def test_rejected_resume_does_not_touch_the_run(capsys, copy, args, needle):
    before = snapshot(copy)
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--resume", "--out", copy, *args), needle)
    assert snapshot(copy) == before
    assert main(["sample", str(copy), "--out", str(copy.parent / "s")]) == 0  # still usable


@pytest.mark.parametrize("item,needle", [("tokenizer=word", "tokenizer ('char' -> 'word')"),
                                         ("n_layer=3", "n_layer (4 -> 3)")])
def test_resume_refuses_tokenizer_and_shape_changes(capsys, tmp_path, item, needle):
    run = RunDir(tmp_path / "gpt")
    run.write_config("gpt", config_dict(get_recipe("gpt").Config()))
    run.save_state({"step": 5, "modules": {}, "optimizers": {}, "schedulers": {}, "rng": {}})
    before = snapshot(run.path)
    assert_one_line_error(*run_cli(capsys, "train", "gpt", "--resume", "--out", run.path, "--set", item,
                                   "--set", "max_steps=50"), needle)
    assert snapshot(run.path) == before


def test_resume_applies_allowed_changes(capsys, copy):
    assert main(["train", "gan-curve", "--resume", "--out", str(copy), "--set", "max_steps=30", "--no-progress"]) == 0
    assert "max_steps = 30" in (copy / "config.toml").read_text()
    rows = RunDir(copy).read_metrics()
    keys = [(r["step"], r["kind"]) for r in rows]
    assert len(keys) == len(set(keys)) and max(k[0] for k in keys) == 30


# -- item 6: config tables --------------------------------------------------------------------------
def test_config_file_table_is_refused_by_name(capsys, tmp_path):
    (tmp_path / "c.toml").write_text("[train]\nlr = 1e6\n")
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--config", tmp_path / "c.toml",
                                   "--out", tmp_path / "r"), "table [train]")
    assert not (tmp_path / "r").exists()


# -- item 4: a full disk during a save ---------------------------------------------------------------
def test_full_disk_during_a_save_is_one_line_and_keeps_the_checkpoint(capsys, copy, monkeypatch):
    import errno

    from genlab.engine import io as gio

    before = snapshot(copy)
    real = gio.os.fsync

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gio.os, "fsync", no_space)
    line = assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--resume", "--out", copy,
                                          "--set", "max_steps=40", "--no-progress"), "No space left on device")
    monkeypatch.setattr(gio.os, "fsync", real)
    assert "previous version is kept" in line
    after = snapshot(copy)
    assert after["model.safetensors"] == before["model.safetensors"] and after["state.pt"] == before["state.pt"]


# -- importers -------------------------------------------------------------------------------------
def test_import_gpt2_invalid_sizes_and_vocab(capsys, tmp_path):
    d = tmp_path / "hf"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 300, "n_positions": 64,
                                               "n_layer": -1, "n_head": 2, "n_embd": 32}))
    assert_one_line_error(*run_cli(capsys, "import", "gpt2", d, "--out", tmp_path / "r"), "n_layer = -1")
    assert not (tmp_path / "r").exists()

    from genlab.errors import DataError
    from genlab.tokenizers.gpt2 import GPT2Tokenizer

    (d / "vocab.json").write_text(json.dumps({t: 0 for t in ["a", "b", "c"]}))
    (d / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(DataError, match="its own non-negative id"):
        GPT2Tokenizer.from_files(d / "vocab.json", d / "merges.txt")


# -- issue 11.5: data paths are stored absolute ---------------------------------------------------------
def test_run_trained_on_relative_data_evaluates_from_elsewhere(capsys, tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "work" / "nums.txt").write_text(" ".join(str(5 * (i % 20)) for i in range(200)))
    monkeypatch.chdir(tmp_path / "work")
    assert main(["train", "gan-pattern", "--data", "nums.txt", "--out", "run", "--set", "max_steps=4",
                 "--set", "eval_samples=100", "--no-progress"]) == 0
    assert f'data = "{tmp_path / "work" / "nums.txt"}"' in (tmp_path / "work" / "run" / "config.toml").read_text()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["eval", str(tmp_path / "work" / "run")]) == 0
