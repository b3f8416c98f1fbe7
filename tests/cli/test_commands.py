"""What `genlab` tells a user: start-up time, keys of a recipe, --set forms, sample folders, info, run names."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import genlab
from genlab.api import _new_run_dir, build_config
from genlab.cli import _parser, main
from genlab.engine.keys import describe_config, field_comments
from genlab.recipes import REGISTRY, get_recipe

SRC = Path(genlab.__file__).resolve().parents[1]
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["list"]])
def test_quick_commands_start_in_well_under_a_second(args):
    code = ("import sys, time; t = time.perf_counter(); from genlab.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', time.perf_counter() - t, file=sys.stderr)")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=SUBPROCESS_ENV, capture_output=True, text=True,
                          timeout=60)
    wall = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    assert "NO-TORCH" in done.stderr  # torch (3 s to import on this machine) stays out of these commands
    assert wall < 1.5, f"genlab {' '.join(args)} took {wall:.2f} s"


def test_every_key_of_every_recipe_is_described():
    for name in REGISTRY:
        cls = get_recipe(name)
        for options in (cls.Config, cls.Sample):
            missing = [k.name for k in describe_config(options) if not k.description]
            assert not missing, f"{name} {options.__name__}: keys without a description: {missing}"


def test_descriptions_are_read_from_the_field_comments():
    from dataclasses import dataclass, field

    @dataclass
    class Base:
        a: int = 1          # the a key
        b: str = "x#y"      # b, with a '#' inside its default

    @dataclass
    class Child(Base):
        a: int = 2
        c: list[str] = field(default_factory=list, metadata={"help": "from metadata"})
        # a comment line of its own describes nothing
        d: float = 0.5

    assert field_comments(Base) == {"a": "the a key", "b": "b, with a '#' inside its default"}
    rows = {k.name: k for k in describe_config(Child)}
    assert (rows["a"].default, rows["a"].description) == (2, "the a key")  # the base's description
    assert (rows["c"].type, rows["c"].description) == ("list", "from metadata")
    assert rows["d"].description == ""


def test_keys_and_train_help_list_the_keys(capsys):
    assert main(["keys", "gpt"]) == 0
    out = capsys.readouterr().out
    assert "block_size" in out and "context length in tokens" in out and "nanogpt-cpu:" in out
    assert "temperature" in out  # sampling options too
    with pytest.raises(SystemExit) as e:
        main(["train", "lstm-lm", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--resume" in out and "seq_len" in out and "truncated-BPTT window" in out
    assert main(["keys", "no-such-recipe"]) == 1


def test_set_takes_several_pairs_and_repeats():
    args = _parser().parse_args(["train", "gan-curve", "--set", "lr=0.01", "max_steps=7", "--set", "hidden=8"])
    assert args.sets == ["lr=0.01", "max_steps=7", "hidden=8"]
    cfg = build_config(get_recipe("gan-curve"), overrides=args.sets)
    assert (cfg.lr, cfg.max_steps, cfg.hidden) == (0.01, 7, 8)


@pytest.fixture(scope="module")
def pattern_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "pattern"
    genlab.train("gan-pattern", overrides={"max_steps": 10, "eval_every": 5}, out=out, progress=False)
    return out


def test_sample_never_overwrites(pattern_run, tmp_path, capsys):
    assert main(["sample", str(pattern_run), "--n", "20"]) == 0
    assert main(["sample", str(pattern_run), "--n", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "20 rows of (value)" in out
    first, second = pattern_run / "samples" / "cli-001", pattern_run / "samples" / "cli-002"
    assert f"wrote: {first / 'numbers.csv'}" in out and f"wrote: {second / 'numbers.csv'}" in out
    assert (first / "numbers.csv").read_text() != (second / "numbers.csv").read_text()
    # an explicit --out that holds files needs --force
    assert main(["sample", str(pattern_run), "--out", str(first)]) == 1
    assert "already holds files" in capsys.readouterr().err
    assert main(["sample", str(pattern_run), "--out", str(first), "--force", "--n", "20", "--seed", "1"]) == 0
    assert (first / "numbers.csv").read_text() == (second / "numbers.csv").read_text()


def test_info_is_readable_and_json_has_objects(pattern_run, capsys):
    assert main(["info", str(pattern_run)]) == 0
    out = capsys.readouterr().out
    for line in ("recipe:      gan-pattern", "steps:       10", "parameters:", "data:        embedded default",
                 "best", "config (changed from the defaults): max_steps=10, eval_every=5"):
        assert line in out, out
    assert main(["info", str(pattern_run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert isinstance(info["best"], dict) and info["best"]["step"] in (5, 10)
    assert info["config_changes"] == {"max_steps": 10, "eval_every": 5}


def test_default_run_names_never_read_like_model_names(tmp_path):
    root = tmp_path / "runs"
    assert _new_run_dir("gpt", root) == root / "gpt-001"
    (root / "gpt-001").mkdir(parents=True)
    (root / "gpt-003").mkdir()
    assert _new_run_dir("gpt", root) == root / "gpt-002"  # the first free number, always three digits


def test_the_registry_is_the_one_source_of_names_and_summaries():
    for name, entry in REGISTRY.items():
        cls = get_recipe(name)
        assert cls.name == name and entry.summary and entry.default_data
        assert not hasattr(cls, "summary") and not hasattr(cls, "default_data")  # said once, in the registry


def test_a_reader_that_leaves_early_is_not_an_error():
    """`genlab keys gpt | head -1`: the pipe closes after one line; genlab exits 0 without a message."""
    proc = subprocess.Popen([sys.executable, "-m", "genlab", "keys", "gpt"], env=SUBPROCESS_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()   # before genlab writes anything: every write meets a closed pipe
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == b"", err.decode()


def test_the_command_ends_without_teardown_yet_loses_no_output(tmp_path):
    """`genlab` leaves through os._exit (cli.entry): everything printed into a pipe and every
    file of the run is there, and a user's error keeps exit status 1."""
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "genlab", "train", "gan-curve", "--out", str(out), "--no-progress",
                           "--set", "max_steps=20", "--set", "eval_every=10"],
                          env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"run: {out}" in done.stdout and done.stdout.rstrip().splitlines()[-1].startswith("sample: ")
    assert (out / "model.safetensors").is_file() and (out / "plots" / "metrics.png").is_file()
    assert len((out / "metrics.jsonl").read_text().splitlines()) >= 3
    bad = subprocess.run([sys.executable, "-m", "genlab", "info", str(tmp_path / "nothing")], env=SUBPROCESS_ENV,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("genlab: error: run directory not found")
