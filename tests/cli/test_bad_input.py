"""Every bad input gets a one-line error and exit status 1, and nothing saved is lost."""
from __future__ import annotations

from pathlib import Path

import pytest

from genlab.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("genlab: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "curve"
    assert main(["train", "gan-curve", "--out", str(out), "--set", "max_steps=20", "--set", "eval_every=10",
                 "--no-progress"]) == 0
    return out


def test_unknown_recipe(capsys):
    assert_one_line_error(*run_cli(capsys, "train", "no-such-recipe"), "unknown recipe 'no-such-recipe'")


@pytest.mark.parametrize("sets,needle", [(["lr"], "KEY=VALUE"), (["lr=abc"], "'lr'"),
                                         (["colour=red"], "unknown config key 'colour'"),
                                         (["max_steps=-3"], "max_steps")])
def test_bad_set(capsys, tmp_path, sets, needle):
    args = ["train", "gan-curve", "--out", str(tmp_path / "r")]
    for s in sets:
        args += ["--set", s]
    assert_one_line_error(*run_cli(capsys, *args), needle)
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_unknown_preset(capsys):
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--preset", "huge"), "unknown preset 'huge'")


def test_missing_empty_and_binary_data(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, "train", "gan-pattern", "--data", str(tmp_path / "nope.txt")),
                          "not found", "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert_one_line_error(*run_cli(capsys, "train", "gan-pattern", "--data", str(empty)), "empty")
    (tmp_path / "emptydir").mkdir()
    assert_one_line_error(*run_cli(capsys, "train", "classifier", "--data", str(tmp_path / "emptydir")), "empty")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(bytes(range(256)) * 64)
    assert_one_line_error(*run_cli(capsys, "train", "gan-pattern", "--data", str(binary)), "binary")


def test_unsafe_curve_expression(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--set", "fn=__import__('os').getcwd()",
                                   "--out", str(tmp_path / "r")))


def test_existing_run_is_not_overwritten(capsys, trained):
    before = (trained / "model.safetensors").read_bytes()
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--out", str(trained)), "--resume")
    assert (trained / "model.safetensors").read_bytes() == before


def test_run_directory_of_another_recipe(capsys, trained):
    assert_one_line_error(*run_cli(capsys, "train", "gan-pattern", "--out", str(trained), "--resume"),
                          "made by recipe 'gan-curve'")


def test_not_a_run_directory(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, "sample", str(tmp_path)), "not a genlab run directory")
    assert_one_line_error(*run_cli(capsys, "eval", str(tmp_path / "missing")), "not found")
    assert_one_line_error(*run_cli(capsys, "info", str(tmp_path)), "not a genlab run directory")


def test_truncated_checkpoints(capsys, trained, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    shutil.rmtree(broken / "best", ignore_errors=True)
    w = broken / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    assert_one_line_error(*run_cli(capsys, "sample", str(broken)), "corrupt or truncated")
    s = broken / "state.pt"
    s.write_bytes(s.read_bytes()[:100])
    assert_one_line_error(*run_cli(capsys, "train", "gan-curve", "--out", str(broken), "--resume"),
                          "corrupt or truncated")


def test_invalid_sample_option(capsys, trained):
    assert_one_line_error(*run_cli(capsys, "sample", str(trained), "--set", "colour=1"), "unknown config key")


def test_list_and_info(capsys, trained):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("classifier", "gan-curve", "gan-pattern"):
        assert name in out
    assert main(["info", str(trained)]) == 0
    assert "recipe:      gan-curve" in capsys.readouterr().out
    assert main(["info", str(trained), "--json"]) == 0
    assert '"recipe": "gan-curve"' in capsys.readouterr().out


def test_sample_and_eval_commands(capsys, trained, tmp_path):
    assert main(["sample", str(trained), "--n", "200", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "points.png").stat().st_size > 1000
    assert main(["eval", str(trained), "--json"]) == 0
    assert '"mse"' in capsys.readouterr().out
