"""The run directory's promises under stress: finite checkpoints only, one trainer per directory,
truthful Ctrl-C and resume, each step logged once, tidy files (issue 9 items 1, 3, 7; issue 11.4)."""
from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.cli import main
from genlab.engine import io as gio
from genlab.engine.rundir import RunDir, load_prefixed
from genlab.errors import Interrupted, RunDirError, TrainingDiverged
from genlab.recipes.toy_gans import CurveGANRecipe

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
FAST = {"eval_samples": 200, "log_every": 5}


def _finite(path: Path) -> bool:
    return all(torch.isfinite(t).all() for t in load_file(str(path)).values())


# -- item 1: divergence ---------------------------------------------------------------------------
def test_divergence_never_saves_non_finite_weights(tmp_path):
    out = tmp_path / "nan"
    with pytest.raises(TrainingDiverged) as e:
        genlab.train("gan-curve", overrides={**FAST, "lr": 1e6, "max_steps": 200, "save_every": 1}, out=out,
                     progress=False)
    saved = RunDir(out).load_state()["step"]
    assert f"the last good checkpoint is step {saved} in" in str(e.value)
    assert _finite(out / "model.safetensors")
    points = genlab.load(out).sample(n=20).values
    assert points.shape == (20, 2) and torch.isfinite(torch.as_tensor(points)).all()


def test_divergence_without_a_checkpoint_says_so(tmp_path):
    out = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match="no checkpoint was saved yet") as e:
        genlab.train("gan-curve", overrides={**FAST, "lr": 1e6, "max_steps": 200}, out=out, progress=False)
    assert "step 0" not in str(e.value) and not (out / "state.pt").exists()


# -- item 3: one trainer per run directory; 11.4: Ctrl-C saves and says so -----------------------------
def _spawn_trainer(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "genlab", "train", "gan-curve", "--out", str(out), "--no-progress",
           "--set", "max_steps=100000", "--set", "save_every=0", "--set", "eval_every=0", "--set", "log_every=5",
           *extra]
    return subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE, text=True)


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not cond():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < end, "timed out"
        time.sleep(0.2)


def test_second_trainer_refused_then_ctrl_c_saves_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    proc = _spawn_trainer(out)
    try:
        _wait_for(lambda: RunDir(out).metrics_file.is_file() and RunDir(out).read_metrics(), proc)
        for resume in (False, True):  # a new run and a resume of the same directory are both refused
            code = main(["train", "gan-curve", "--out", str(out), "--set", "max_steps=5",
                                    *(["--resume"] if resume else [])])
            err = capsys.readouterr().err
            assert code == 1 and f"run directory {out} is in use by process {proc.pid}" in err, err
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    step = RunDir(out).load_state()["step"]
    assert f"genlab: interrupted at step {step}: checkpoint of step {step} saved in" in err
    assert "Traceback" not in err
    metrics = RunDir(out).read_metrics()
    # the first trainer's log is its own: the refused ones wrote nothing
    assert [r["step"] for r in metrics if r["kind"] == "train"] == list(range(5, step + 1, 5))


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(f"{dead.pid}\n")
    genlab.train("gan-curve", overrides={**FAST, "max_steps": 5}, out=out, progress=False)
    assert (out / ".lock").read_text().strip() == str(os.getpid())


# -- 11.4: resume without a checkpoint, and each step logged once --------------------------------------
def test_interrupt_before_the_first_checkpoint_then_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    original = CurveGANRecipe.training_step

    def interrupted(self, batch, step):
        if step == 12:
            raise KeyboardInterrupt
        return original(self, batch, step)

    monkeypatch.setattr(CurveGANRecipe, "training_step", interrupted)
    with pytest.raises(Interrupted, match="interrupted at step 12; no checkpoint was saved yet"):
        genlab.train("gan-curve", overrides={**FAST, "max_steps": 20, "save_every": 100, "eval_every": 10},
                     out=out, progress=False)
    monkeypatch.setattr(CurveGANRecipe, "training_step", original)
    assert not (out / "state.pt").exists()
    genlab.train("gan-curve", out=out, resume=True, progress=False)
    assert "has no checkpoint (state.pt): training starts at step 0" in capsys.readouterr().err
    rows = RunDir(out).read_metrics()
    keys = [(r["step"], r["kind"]) for r in rows]
    assert len(keys) == len(set(keys)), keys
    # resuming the finished run again adds no second final evaluation
    genlab.train("gan-curve", out=out, resume=True, progress=False)
    assert RunDir(out).read_metrics() == rows


# -- item 7: small things ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "small"
    genlab.train("gan-curve", overrides={**FAST, "max_steps": 5}, out=out, progress=False)
    return out


def test_stale_temp_files_removed_on_next_start(small_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(small_run, out)
    stale = [out / ".model.safetensors.x1y2.tmp", out / ".state.pt.abc.tmp", out / "best" / ".model.safetensors.q.tmp"]
    for p in stale:
        p.write_bytes(b"half a save")
        os.utime(p, (time.time() - 3600,) * 2)  # left by an earlier process
    fresh = out / ".metrics.jsonl.inflight.tmp"  # another writer's save in progress: kept
    fresh.write_bytes(b"")
    os.utime(fresh, (time.time() + 5,) * 2)
    genlab.train("gan-curve", out=out, resume=True, progress=False)
    assert not any(p.exists() for p in stale) and fresh.exists()


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        gio.write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == mode


def test_weight_mismatch_names_keys_and_shapes():
    with pytest.raises(RunDirError) as e:
        load_prefixed({"net": torch.nn.Sequential(torch.nn.Linear(5, 2))},
                      {"net.0.weight": torch.zeros(2, 3), "net.0.bias": torch.zeros(2), "net.1.weight": torch.zeros(1)},
                      "model.safetensors")
    msg = str(e.value)
    assert "0.weight has shape [2, 3], the model needs [2, 5]" in msg and "unexpected 1.weight" in msg


def test_non_finite_state_is_refused_on_resume(small_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(small_run, out)
    run = RunDir(out)
    state = run.load_state()
    first = next(iter(state["modules"]["generator"]))
    state["modules"]["generator"][first].fill_(float("inf"))
    run.save_state({k: v for k, v in state.items() if k != "format"})
    before = run.config_file.read_bytes()
    with pytest.raises(RunDirError, match="are not finite"):
        genlab.train("gan-curve", out=out, resume=True, overrides={"max_steps": 9}, progress=False)
    assert run.config_file.read_bytes() == before
