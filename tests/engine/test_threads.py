"""The automatic thread choice (engine/threads.py) with injected affinity, quota and load."""
import pytest
import torch

from genlab.engine import threads as th
from genlab.engine.threads import CPUs, cgroup_quota, choose_threads, configure_threads

SMALL, LARGE = 400_000, 40_000_000


@pytest.mark.parametrize("cpus, params, expected", [
    (CPUs(affinity=8, load=1.0), SMALL, 1),                    # small model: one thread, idle machine or not
    (CPUs(affinity=8, load=1.0), LARGE, 8),                    # large model, idle machine: every CPU
    (CPUs(affinity=8, load=5.0), LARGE, 4),                    # 4 other busy processes: the free CPUs
    (CPUs(affinity=2, load=6.7), LARGE, 1),                    # oversubscribed: one thread
    (CPUs(affinity=2, load=2.0), LARGE, 1),                    # one other busy process on 2 cores
    (CPUs(affinity=64, quota=2.0, load=1.0), LARGE, 2),        # container limited to 2 CPUs
    (CPUs(affinity=64, quota=0.5, load=0.0), LARGE, 1),        # a fractional quota still gets one
    (CPUs(affinity=3, load=0.0), LARGE, 3),                    # affinity mask smaller than the machine
    (CPUs(affinity=8, load=2.0, local_processes=2), LARGE, 4),  # two torchrun ranks share the CPUs
    (CPUs(affinity=8, load=1.0), 5_000_000, 2),                # a mid-size model: a thread per 2M parameters
])
def test_choice(cpus, params, expected):
    assert choose_threads(params, cpus) == expected


def test_never_zero_and_never_above_usable():
    for load in (0.0, 0.5, 3.0, 100.0):
        for affinity in (1, 2, 16):
            for quota in (None, 0.1, 1.5, 64.0):
                c = CPUs(affinity=affinity, quota=quota, load=load)
                n = choose_threads(10**10, c)
                assert 1 <= n <= max(1, min(affinity, quota or affinity))


def test_cgroup_quota_v2_v1_and_unlimited(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota(tmp_path) == pytest.approx(1.5)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_quota(v1) == pytest.approx(2.0)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    assert cgroup_quota(v1) is None
    assert cgroup_quota(tmp_path / "missing") is None


def test_available_cpus_reads_this_machine(monkeypatch):
    monkeypatch.setattr(th.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(th.os, "getloadavg", lambda: (4.0, 3.0, 2.0))
    monkeypatch.setattr(th, "cgroup_quota", lambda: 2.0)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    c = th.available_cpus()
    assert (c.affinity, c.quota, c.load, c.usable, c.free) == (3, 2.0, 4.0, 2, 1)


def test_configure_counts_trainable_parameters_once_forces_and_announces(capsys):
    n0 = torch.get_num_threads()
    try:
        big = torch.nn.Linear(2000, 2000)                # 4M parameters
        ema = torch.nn.Linear(2000, 2000).requires_grad_(False)
        idle = CPUs(affinity=8, load=0.0)
        assert configure_threads(0, {"model": big, "ema": ema, "again": big}, cpus=idle) == 2
        assert torch.get_num_threads() == 2
        assert configure_threads(0, [torch.nn.Linear(10, 10)], announce=True, cpus=idle) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("threads: 1 (auto:") and "load 0.0" in err
        assert configure_threads(3, [big], announce=True) == 3 and torch.get_num_threads() == 3
        assert "forced" in capsys.readouterr().err
    finally:
        torch.set_num_threads(n0)
