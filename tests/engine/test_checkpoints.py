"""Kept checkpoints (keep_checkpoints) and their average (genlab average, --which averaged)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.cli import main
from genlab.engine.checkpoints import average_tensors, kept_checkpoints
from genlab.engine.rundir import RunDir
from genlab.engine.trainer import Trainer
from genlab.errors import RunDirError
from line_recipe import LineConfig, LineRecipe


def _fit(path, **config):
    r = LineRecipe(LineConfig(eval_every=0, **config), run_dir=path)
    r.setup(training=True)
    Trainer(r, RunDir(path), progress=False).fit()


def test_average_of_two_state_dicts_is_the_hand_mean():
    a = {"w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([0.5]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([[3.0, 0.0], [-3.0, 8.0]]), "b": torch.tensor([1.5]), "n": torch.tensor(7)}
    mean = average_tensors([("a", a), ("b", b)])
    assert torch.equal(mean["w"], torch.tensor([[2.0, 1.0], [0.0, 6.0]]))
    assert torch.equal(mean["b"], torch.tensor([1.0])) and mean["w"].dtype == torch.float32
    assert int(mean["n"]) == 7  # integer counters come from the newest checkpoint
    half = {k: v.half() if v.is_floating_point() else v for k, v in a.items()}
    assert average_tensors([("a", half), ("a2", half)])["w"].dtype == torch.float16


@pytest.mark.parametrize("other,needle", [
    ({"w": torch.zeros(2, 2)}, "lacks b"),
    ({"w": torch.zeros(2, 2), "b": torch.zeros(1), "c": torch.zeros(1)}, "has extra c"),
    ({"w": torch.zeros(2, 3), "b": torch.zeros(1)}, "w is float32 [2, 3] in y but float32 [2, 2] in x"),
    ({"w": torch.zeros(2, 2, dtype=torch.float64), "b": torch.zeros(1)}, "w is float64"),
    ({"w": torch.full((2, 2), float("nan")), "b": torch.zeros(1)}, "not finite"),
])
def test_averaging_refuses_checkpoints_that_do_not_match(other, needle):
    with pytest.raises(RunDirError) as e:
        average_tensors([("x", {"w": torch.zeros(2, 2), "b": torch.zeros(1)}), ("y", other)])
    assert needle in str(e.value)


def test_keep_checkpoints_keeps_exactly_the_last_n(tmp_path):
    _fit(tmp_path, max_steps=40, save_every=5, keep_checkpoints=3)
    kept = kept_checkpoints(RunDir(tmp_path))
    assert [s for s, _ in kept] == [30, 35, 40]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [p.name for _, p in kept]
    last = load_file(str(tmp_path / "model.safetensors"))
    assert torch.equal(load_file(str(kept[-1][1]))["model.weight"], last["model.weight"])
    # the default keeps none
    _fit(tmp_path / "none", max_steps=20, save_every=5)
    assert not (tmp_path / "none" / "checkpoints").exists()


def test_averaged_checkpoint_loads_samples_and_evaluates(tmp_path, capsys):
    out = tmp_path / "p"
    genlab.train("gan-pattern", overrides={"max_steps": 30, "save_every": 10, "eval_every": 30, "keep_checkpoints": 2},
                 out=out, progress=False)
    assert main(["eval", str(out), "--which", "averaged"]) == 1
    assert "has no averaged checkpoint: make one with genlab average RUN --last N" in capsys.readouterr().err
    assert main(["average", str(out), "--last", "3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "keeps 2 checkpoint(s) (steps: 20, 30)" in err and "keep_checkpoints=3" in err
    assert main(["average", str(out), "--last", "2"]) == 0
    assert "wrote:" in capsys.readouterr().out
    files = [load_file(str(p)) for _, p in kept_checkpoints(RunDir(out))]
    averaged = load_file(str(out / "averaged" / "model.safetensors"))
    for k, v in averaged.items():
        assert torch.allclose(v, (files[0][k].double() + files[1][k].double()).div(2).float()), k
    assert json.loads((out / "averaged" / "averaged.json").read_text()) == {"steps": [20, 30]}
    run = genlab.load(out, which="averaged")
    nums = run.sample(n=20).values
    assert nums.shape[0] == 20
    assert {"valid_share", "coverage", "score"} <= run.evaluate().keys()
    assert main(["eval", str(out), "--which", "averaged", "--json"]) == 0
    assert "valid_share" in capsys.readouterr().out
