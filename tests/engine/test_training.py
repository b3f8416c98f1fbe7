"""End-to-end behaviour of the engine: exact resume after kill -9, DDP, early stopping, NaN."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.engine.rundir import RunDir
from genlab.engine.trainer import Trainer
from genlab.errors import TrainingDiverged
from genlab.recipes.base import Recipe
from line_recipe import LineConfig, LineRecipe  # tests/engine/line_recipe.py: a recipe shared by engine tests

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "OMP_NUM_THREADS": "1"}


def genlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "genlab", *args]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    sets = ["--set", "max_steps=600", "--set", "save_every=50", "--set", "eval_every=100",
            "--set", "early_stop_patience=0", "--no-progress"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(genlab_cmd("train", "gan-curve", "--out", str(full), *sets), env=ENV, check=True,
                   capture_output=True)

    proc = subprocess.Popen(genlab_cmd("train", "gan-curve", "--out", str(cut), *sets), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (cut / "state.pt").exists() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.5))  # kill at an arbitrary moment, maybe mid-save
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "training finished before it could be killed; make the run longer"
    step = RunDir(cut).load_state()["step"]
    assert 50 <= step < 600

    subprocess.run(genlab_cmd("train", "gan-curve", "--out", str(cut), "--resume", *sets), env=ENV, check=True,
                   capture_output=True)
    a, b = weights(full), weights(cut)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the metrics log of the resumed run matches the uninterrupted one line for line (times aside)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(RunDir(cut).read_metrics()) == strip(RunDir(full).read_metrics())


def test_torchrun_two_processes_matches_single_process(tmp_path, torchrun):
    sets = ["--set", "arch=mlp", "--set", "max_steps=60", "--set", "log_every=10", "--set", "eval_every=0",
            "--set", "batch_size=64", "--no-progress"]
    single, multi = tmp_path / "single", tmp_path / "multi"
    subprocess.run(genlab_cmd("train", "classifier", "--out", str(single), *sets), env=ENV, check=True,
                   capture_output=True)
    out = torchrun("train", "classifier", "--out", str(multi), *sets)
    assert out.returncode == 0, out.stderr[-2000:]
    losses = lambda run: [r["loss"] for r in RunDir(run).read_metrics() if r.get("kind") == "train"]  # noqa: E731
    a, b = losses(single), losses(multi)
    assert len(a) == len(b) == 6
    # Same global batches, gradients averaged by DDP: the curves agree to float round-off.
    for x, y in zip(a, b):
        assert abs(x - y) <= 1e-3 * max(1.0, abs(x)), (a, b)
    assert a[-1] < a[0]


def _fit(tmp_path, **overrides):
    cfg = LineConfig(**overrides)
    r = LineRecipe(cfg, run_dir=tmp_path)
    r.setup(training=True)
    return r, Trainer(r, RunDir(tmp_path), progress=False).fit()


def test_loss_falls_and_plot_written(tmp_path):
    r, result = _fit(tmp_path)
    rows = [x["loss"] for x in RunDir(tmp_path).read_metrics() if x.get("kind") == "train"]
    assert rows[-1] < 0.1 * rows[0]
    assert (tmp_path / "plots" / "metrics.png").stat().st_size > 1000


def test_early_stopping_keeps_the_best_checkpoint(tmp_path):
    r, result = _fit(tmp_path, early_stop_metric="score", early_stop_mode="max", early_stop_patience=2)
    assert result["stopped_early"] and result["step"] == 20  # evals at 5,10,15,20: two without improving
    best = load_file(str(tmp_path / "best" / "model.safetensors"))
    last = load_file(str(tmp_path / "model.safetensors"))
    assert not torch.equal(best["model.weight"], last["model.weight"])
    assert '"step": 10' in (tmp_path / "best" / "metrics.json").read_text()


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"became nan.*last good checkpoint is step 20"):
        _fit(tmp_path, nan_at=25)
    assert RunDir(tmp_path).load_state()["step"] == 20
    w = load_file(str(tmp_path / "model.safetensors"))["model.weight"]
    assert torch.isfinite(w).all()


def test_grad_accumulation_equals_big_batch(tmp_path):
    _, _ = _fit(tmp_path / "a", batch_size=32, max_steps=10)
    _, _ = _fit(tmp_path / "b", batch_size=16, grad_accum=2, max_steps=10)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))["model.weight"]
    b = load_file(str(tmp_path / "b" / "model.safetensors"))["model.weight"]
    assert torch.allclose(a, b, atol=1e-6)


def test_python_api_train_load_sample_evaluate(tmp_path):
    run = genlab.train("gan-pattern", overrides={"max_steps": 30, "eval_every": 15}, out=tmp_path / "p",
                       progress=False)
    loaded = genlab.load(run.path)
    nums = loaded.sample(n=50).values[:, 0]
    assert nums.shape == (50,) and nums.min() >= 0 and nums.max() < 100
    metrics = loaded.evaluate()
    assert {"valid_share", "coverage", "score"} <= metrics.keys()
    files = loaded.sample(out=tmp_path / "s", n=100)
    assert sorted(Path(f).name for f in files) == ["numbers.csv", "numbers.png"]
    assert all(Path(f).exists() for f in files)
    info = loaded.info()
    assert info["step"] == 30 and info["config_changes"] == {"max_steps": 30, "eval_every": 15}
    assert info["best"]["step"] in (15, 30) and isinstance(info["best"]["score"], float)


class WideLineRecipe(LineRecipe):
    """LineRecipe that states a model width and records what the trainer announces."""

    def model_width(self):
        return 64

    def start_micro_batch(self, index, count):
        self.announced = getattr(self, "announced", []) + [(index, count)]
        super().start_micro_batch(index, count)


def test_the_trainer_talks_to_a_recipe_through_its_seam(tmp_path):
    from genlab.engine.seam import TrainableRecipe
    from genlab.engine.schedules import lr_multiplier

    cfg = LineConfig(max_steps=3, grad_accum=2, lr_schedule="noam", warmup_steps=2, eval_every=0, save_every=0,
                     lr=1.0)
    r = WideLineRecipe(cfg, run_dir=tmp_path / "run")
    assert isinstance(r, Recipe) and all(hasattr(r, m) for m in TrainableRecipe.__annotations__)
    r.setup(training=True)
    Trainer(r, RunDir(tmp_path / "run"), progress=False).fit()
    assert r.announced == [(0, 2), (1, 2)] * 3  # every micro-batch, numbered within its optimizer step
    # noam at the recipe's width (64), not a model key read from the config
    expected = lr_multiplier("noam", 3, 2, d_model=64)(3)
    assert r.optimizers["model"].param_groups[0]["lr"] == pytest.approx(expected)


@dataclass
class SampledLineConfig(LineConfig):
    eval_points: int = 64                 # held-out points per evaluation
    periodic_eval = {"eval_points": 8}    # evaluations before the last step: 8 points


class SampledLineRecipe(LineRecipe):
    """LineRecipe whose score is its evaluation's size: an estimate and a full report differ."""

    Config = SampledLineConfig

    def evaluate(self):
        self.seen = getattr(self, "seen", []) + [self.config.eval_points]
        return {"score": float(self.config.eval_points)}


def _fit_sampled(path, **overrides):
    cfg = SampledLineConfig(max_steps=20, save_every=0, early_stop_metric="score", early_stop_mode="max",
                            **overrides)
    r = SampledLineRecipe(cfg, run_dir=path)
    r.setup(training=True)
    Trainer(r, RunDir(path), progress=False).fit()
    return r, [(x["step"], x["score"]) for x in RunDir(path).read_metrics() if x.get("kind") == "eval"]


def test_periodic_evaluations_are_estimates_the_final_one_is_full(tmp_path):
    import json

    r, evals = _fit_sampled(tmp_path / "a")
    # steps 5, 10, 15: the estimate; step 20 (the last): the full report, judged on its estimate
    assert evals == [(5, 8.0), (10, 8.0), (15, 8.0), (20, 64.0)]
    assert r.seen == [8, 8, 8, 64, 8] and r.config.eval_points == 64
    best = json.loads((tmp_path / "a" / "best" / "metrics.json").read_text())
    assert best["step"] == 5      # 64 points is no improvement over 8: estimates are compared with estimates
    r, evals = _fit_sampled(tmp_path / "b", eval_estimate=False)
    assert r.seen == [64] * 4 and evals[-1] == (20, 64.0)
    r, _ = _fit_sampled(tmp_path / "c", eval_points=32)     # a key the user set keeps its value
    assert r.seen == [32] * 4
    r, evals = _fit_sampled(tmp_path / "d", eval_every=0)   # only the final evaluation: full, judged as is
    assert r.seen == [64] and evals == [(20, 64.0)]
