import errno

import pytest
import torch

from genlab.engine import io as gio
from genlab.engine.rundir import RunDir
from genlab.errors import RunDirError


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "f.bin"
    gio.write_bytes(p, b"old")
    with pytest.raises(RuntimeError):
        with gio.atomic_write(p) as f:
            f.write(b"half")
            raise RuntimeError("killed")
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_full_disk_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    m = {"net": torch.nn.Linear(3, 2)}
    run.save_weights(m, step=1)
    before = run.weights_file.read_bytes()

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gio.os, "fsync", no_space)
    with pytest.raises(RunDirError, match="No space left on device.*previous version is kept"):
        run.save_weights({"net": torch.nn.Linear(3, 2)}, step=2)
    assert run.weights_file.read_bytes() == before
    monkeypatch.undo()
    m2 = {"net": torch.nn.Linear(3, 2)}
    assert run.load_weights(m2, "last") == 1
    assert torch.equal(m2["net"].weight, m["net"].weight)


def test_tied_weights_saved(tmp_path):
    a = torch.nn.Linear(4, 4)
    b = torch.nn.Linear(4, 4)
    b.weight = a.weight
    run = RunDir(tmp_path)
    run.save_weights({"a": a, "b": b}, 3)
    c, d = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    assert run.load_weights({"a": c, "b": d}) == 3
    assert torch.equal(d.weight, a.weight)


def test_corrupt_checkpoints_give_clear_errors(tmp_path):
    run = RunDir(tmp_path)
    run.save_weights({"net": torch.nn.Linear(3, 2)}, 1)
    run.save_state({"step": 1})
    data = run.weights_file.read_bytes()
    run.weights_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunDirError, match="corrupt or truncated"):
        run.load_weights({"net": torch.nn.Linear(3, 2)})
    state = run.state_file.read_bytes()
    run.state_file.write_bytes(state[:40])
    with pytest.raises(RunDirError, match="corrupt or truncated"):
        run.load_state()


def test_weights_of_wrong_shape(tmp_path):
    run = RunDir(tmp_path)
    run.save_weights({"net": torch.nn.Linear(3, 2)}, 1)
    with pytest.raises(RunDirError, match="do not fit part 'net'"):
        run.load_weights({"net": torch.nn.Linear(5, 2)})
