"""The automatic thread choice (engine/threads.py): free CPUs from injected affinity, quota, load
and OMP_NUM_THREADS; the decision from injected step timings; the step probe (engine/trainer.py)
that must leave a run exactly as it would have been without it."""
import random
import time

import pytest
import torch
from safetensors.torch import load_file
from threadpoolctl import threadpool_info

import genlab
from genlab.engine import threads as th
from genlab.engine.threads import CPUs, candidates, cgroup_quota, choose_threads, configure_threads, time_step
from genlab.engine.trainer import rng_state, step_probe


@pytest.mark.parametrize("cpus, free", [
    (CPUs(affinity=8, load=1.0), 8),                           # idle: this process is the load
    (CPUs(affinity=8, load=5.0), 4),                           # 4 other busy processes
    (CPUs(affinity=2, load=6.7), 1),                           # oversubscribed
    (CPUs(affinity=2, load=2.0), 1),                           # one other busy process on 2 cores
    (CPUs(affinity=2, load=1.4), 2),                           # a little background noise
    (CPUs(affinity=64, quota=2.0, load=1.0), 2),               # container limited to 2 CPUs
    (CPUs(affinity=64, quota=0.5, load=0.0), 1),               # a fractional quota still gets one
    (CPUs(affinity=3, load=0.0), 3),                           # affinity mask smaller than the machine
    (CPUs(affinity=8, load=2.0, local_processes=2), 4),        # two torchrun ranks share the CPUs
    (CPUs(affinity=8, load=1.0, omp=1), 1),                    # OMP_NUM_THREADS=1: the user's cap
    (CPUs(affinity=8, load=1.0, omp=3, local_processes=2), 3),  # OMP_NUM_THREADS is per process
    (CPUs(affinity=2, load=2.3, competing=0.0), 2),            # the other runnable process is niced
    (CPUs(affinity=4, load=5.0, competing=0.5), 2),            # half of the others are niced
])
def test_free_cpus(cpus, free):
    assert cpus.free == free


def test_free_never_zero_and_never_above_usable():
    for load in (0.0, 0.5, 3.0, 100.0):
        for affinity in (1, 2, 16):
            for quota in (None, 0.1, 1.5, 64.0):
                c = CPUs(affinity=affinity, quota=quota, load=load)
                assert 1 <= c.free <= c.usable <= max(1, min(affinity, quota or affinity))


# Quiet-machine seconds per step measured on the 2-core machine (BENCHMARKS.md, threads section)
CNN = {1: 0.048, 2: 0.028}        # classifier: a second thread gains 1.7x
TOY = {1: 0.0030, 2: 0.0035}      # gan-pattern: a second thread loses


@pytest.mark.parametrize("cpus, timings, expected", [
    (CPUs(affinity=2, load=1.0), CNN, 2),                       # the gain is taken
    (CPUs(affinity=2, load=1.0), TOY, 1),                       # a loss is not
    (CPUs(affinity=2, load=1.0), {1: 0.0300, 2: 0.0285}, 1),    # 5% is not worth a second core
    (CPUs(affinity=2, load=1.0), {1: 0.0300, 2: 0.0250}, 2),    # 20% is
    (CPUs(affinity=2, load=3.0), CNN, 1),                       # one free CPU: no timing can add threads
    (CPUs(affinity=8, load=1.0), {1: 0.40, 4: 0.11, 8: 0.10}, 4),  # fewest threads within 10% of fastest
    (CPUs(affinity=8, load=1.0), {1: 0.40, 4: 0.20, 8: 0.10}, 8),
    (CPUs(affinity=8, load=5.0), {1: 0.40, 8: 0.05}, 1),        # counts above the free CPUs are ignored
    (CPUs(affinity=8, load=1.0), None, 8),                      # nothing to time: the free CPUs
    (CPUs(affinity=8, load=1.0), {}, 8),
])
def test_choice_from_timings(cpus, timings, expected):
    assert choose_threads(cpus, timings) == expected


def test_candidates():
    assert candidates(CPUs(affinity=2, load=5.0)) == [1]
    assert candidates(CPUs(affinity=2, load=1.0)) == [1, 2]
    assert candidates(CPUs(affinity=3, load=1.0)) == [1, 3]
    assert candidates(CPUs(affinity=8, load=1.0)) == [1, 4, 8]


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


def test_competing_share_counts_runnable_processes_not_niced_below_this_one(tmp_path, monkeypatch):
    def process(pid, state, nice):
        (tmp_path / str(pid)).mkdir()
        fields = [state] + ["0"] * 15 + [str(nice)] + ["0"] * 5
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (a (tricky) name) " + " ".join(fields))

    monkeypatch.setattr(th.os, "getpriority", lambda which, who: 0)
    assert th.competing_share(tmp_path, samples=1) == 1.0           # nothing runnable: the load as is
    process(10, "R", 19)
    process(11, "S", 0)
    assert th.competing_share(tmp_path, samples=2, interval=0) == 0.0   # only niced work runs
    process(12, "R", 0)
    process(13, "R", -5)
    (tmp_path / "self").mkdir()
    assert th.competing_share(tmp_path, samples=1) == pytest.approx(2 / 3)
    assert th.competing_share(tmp_path / "missing", samples=1) == 1.0


def test_available_cpus_reads_this_machine(monkeypatch):
    monkeypatch.setattr(th.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(th.os, "getloadavg", lambda: (4.0, 3.0, 2.0))
    monkeypatch.setattr(th, "cgroup_quota", lambda: 2.0)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(th, "competing_share", lambda: 1.0)
    c = th.available_cpus()
    assert (c.affinity, c.quota, c.load, c.omp, c.usable, c.free) == (3, 2.0, 4.0, None, 2, 1)
    monkeypatch.setattr(th, "competing_share", lambda: 0.0)   # the load is niced background work
    assert th.available_cpus().free == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert th.available_cpus().free == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")   # unreadable: no cap
    assert th.available_cpus().free == 2


def test_time_step_alternates_counts_takes_medians_and_restores_threads():
    n0 = torch.get_num_threads()
    calls = []

    def step():  # a step that is 4x faster at 2 threads
        calls.append(torch.get_num_threads())
        time.sleep(0.008 if torch.get_num_threads() == 1 else 0.002)

    timings = time_step(step, [1, 2], budget=10.0, rounds=3)
    assert calls == [1, 2] + [1, 2] * 3          # one warm-up each, then alternated rounds
    assert timings[1] > 2.5 * timings[2] and timings[2] >= 0.002
    assert torch.get_num_threads() == n0
    calls.clear()
    time_step(step, [1, 2], budget=0.0, rounds=3)   # over budget: one round only
    assert calls == [1, 2, 1, 2]


def test_configure_probes_only_with_free_cpus_forces_and_announces(capsys):
    n0 = torch.get_num_threads()
    probed = []

    def timer(step, counts):
        probed.append(counts)
        return {1: 0.048, 2: 0.028}

    try:
        idle, busy = CPUs(affinity=2, load=0.9), CPUs(affinity=2, load=4.0)
        assert configure_threads(0, step=lambda: None, announce=True, cpus=idle, timer=timer) == 2
        assert torch.get_num_threads() == 2 and probed == [[1, 2]]
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("threads: 2 (auto: 2 CPUs, load 0.9 -> 2 free")
        assert "48.0 ms at 1, 28.0 ms at 2" in err
        assert configure_threads(0, step=lambda: None, announce=True, cpus=busy, timer=timer) == 1
        assert probed == [[1, 2]]                     # one free CPU: nothing to time
        assert "-> 1 free" in capsys.readouterr().err
        assert configure_threads(0, announce=True, cpus=idle, timer=timer) == 2   # no step: all free
        assert "no training step to time" in capsys.readouterr().err
        def broken(step, counts):
            raise RuntimeError("a step that fails")
        assert configure_threads(0, step=lambda: None, announce=True, cpus=idle, timer=broken) == 1
        assert "the step probe failed" in capsys.readouterr().err
        assert configure_threads(3, step=lambda: None, announce=True, timer=timer) == 3
        assert torch.get_num_threads() == 3 and probed == [[1, 2]]
        assert "forced" in capsys.readouterr().err
        # numpy's BLAS (the metrics' eigendecompositions) gets the same count, not one per core
        blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and set(blas) == {3}
    finally:
        configure_threads(n0)


LSTM = {"n_embd": 16, "hidden": 32, "n_layers": 2, "seq_len": 16, "batch_size": 4, "eval_streams": 2,
        "novelty_chars": 0, "eval_tokens": 500, "dropout": 0.3, "lr": 1e-2, "device": "cpu", "log_every": 2}


@pytest.mark.parametrize("recipe, overrides", [
    ("lstm-lm", LSTM),   # a carried state (buffer) and dropout (global RNG)
    ("dcgan", {"image_size": 16, "latent_dim": 8, "g_width": 8, "d_width": 8, "batch_size": 8,
               "device": "cpu"}),   # two optimizers, batch-norm statistics, an EMA generator
])
def test_step_probe_leaves_the_recipe_as_it_was(recipe, overrides, tmp_path):
    from genlab.api import build_config
    from genlab.recipes import get_recipe

    cls = get_recipe(recipe)
    r = cls(build_config(cls, overrides=overrides), "cpu", run_dir=tmp_path)
    r.setup(training=True)
    before = {k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in r.modules.items()}
    torch.manual_seed(123)
    random.seed(7)
    rng = rng_state()
    with step_probe(r) as step:
        for _ in range(3):
            step()
        changed = any(not torch.equal(t, before[k][n]) for k, m in r.modules.items()
                      for n, t in m.state_dict().items())
    assert changed, "the probe ran no real training step"
    for k, m in r.modules.items():
        for n, t in m.state_dict().items():
            assert torch.equal(t, before[k][n]), f"{k}.{n}"
        assert all(p.grad is None for p in m.parameters())
    assert r.optimizers == {} and r.schedulers == {}
    assert torch.equal(torch.get_rng_state(), rng["torch"]) and random.getstate() == rng["python"]


def test_a_probed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    """The probe times real steps (2 free CPUs faked) but must change nothing: a run that probed,
    stopped and resumed (probing again) ends with the same weights as one run at one thread."""
    text = tmp_path / "corpus.txt"
    rng = random.Random(0)
    text.write_text("\n".join(f"{rng.choice(['the cat', 'a dog', 'anna'])} {rng.choice(['saw', 'took'])} it."
                              for _ in range(300)) + "\n")
    n0 = torch.get_num_threads()
    probes = []
    real_timer = th.time_step

    def timer(step, counts):
        probes.append(counts)
        return {n: t * (2.0 if n > 1 else 1.0) for n, t in real_timer(step, counts).items()}  # one thread wins

    try:
        sets = {**LSTM, "max_steps": 8, "eval_every": 4, "save_every": 4}
        full = genlab.train("lstm-lm", data=text, overrides={**sets, "threads": 1}, out=tmp_path / "full",
                            progress=False)
        monkeypatch.setattr(th, "available_cpus", lambda: CPUs(affinity=2, load=0.0))
        monkeypatch.setattr(th, "time_step", timer)
        genlab.train("lstm-lm", data=text, overrides={**sets, "max_steps": 4}, out=tmp_path / "cut", progress=False)
        genlab.train("lstm-lm", data=text, overrides=sets, out=tmp_path / "cut", resume=True, progress=False)
    finally:
        torch.set_num_threads(n0)
    assert probes == [[1, 2], [1, 2]]
    a, b = load_file(str(full.path / "model.safetensors")), load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
