"""How many CPU threads a run uses when the config leaves `threads` at 0 (automatic).

torch's default is one thread per core, which is right for a big model on an idle machine and
badly wrong otherwise: a small model spends more time synchronising threads than computing, and
on a machine whose cores are already busy every extra thread waits for a core (on a 2-core
machine under load 3.5-6.7, recipes ran 4-20x slower per step with torch's default than with
one thread). So the choice looks at both sides:

- the CPUs this process can really use: its affinity mask (os.sched_getaffinity), the cgroup
  CPU quota (cgroup v2 cpu.max, or v1 cfs_quota_us / cfs_period_us), shared among the local
  processes of a distributed run (LOCAL_WORLD_SIZE);
- how many of those are free: the 1-minute load average minus this process itself;
- how much work a step has: the model's parameter count (one more thread per
  PARAMS_PER_THREAD parameters), so small models stay on one thread.

`threads=N` in the config forces N. The choice and its reasons are one line in the run header.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

PARAMS_PER_THREAD = 2_000_000   # a model below this stays on one thread (thread sync costs more)
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class CPUs:
    """What the machine offers this process right now."""

    affinity: int                # CPUs in the affinity mask
    quota: float | None = None   # cgroup CPU quota in CPUs (None: unlimited)
    load: float = 0.0            # 1-minute load average (runnable processes, this one included)
    local_processes: int = 1     # processes of this run on this machine (distributed training)

    @property
    def usable(self) -> int:
        """CPUs this process may use: affinity and quota, shared among the run's local processes."""
        n = float(self.affinity)
        if self.quota is not None:
            n = min(n, self.quota)
        return max(1, math.floor(n / max(1, self.local_processes)))

    @property
    def free(self) -> int:
        """Usable CPUs not already busy with other processes (the load counts this one too)."""
        others = max(0.0, self.load - self.local_processes)
        return max(1, min(self.usable, math.floor(self.usable - others / max(1, self.local_processes) + 0.5)))


def cgroup_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The cgroup CPU limit in CPUs, or None when there is none (or it cannot be read)."""
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        q, p = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if q.is_file() and p.is_file():
            quota_us = int(q.read_text())
            return None if quota_us <= 0 else quota_us / int(p.read_text())
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> CPUs:
    """Read affinity, cgroup quota, load average and the local process count of this machine."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # not on Linux
        affinity = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return CPUs(affinity=affinity, quota=cgroup_quota(), load=load, local_processes=local)


def choose_threads(n_params: int, cpus: CPUs) -> int:
    """Threads for a model of `n_params` parameters on `cpus`: one per PARAMS_PER_THREAD of
    model, at most the free CPUs, at least one."""
    wanted = max(1, n_params // PARAMS_PER_THREAD)
    return max(1, min(wanted, cpus.free))


def describe(n: int, n_params: int | None, cpus: CPUs | None) -> str:
    """The run-header line for a thread choice."""
    if cpus is None:
        return f"threads: {n} (forced by threads={n})"
    quota = f", cgroup quota {cpus.quota:g}" if cpus.quota is not None else ""
    local = f", {cpus.local_processes} local processes" if cpus.local_processes > 1 else ""
    return (f"threads: {n} (auto: {n_params / 1e6:.2f}M parameters; {cpus.affinity} CPUs{quota}{local}, "
            f"load {cpus.load:.1f} -> {cpus.free} free; force with --set threads=N)")


def configure_threads(threads: int, modules: Iterable[torch.nn.Module] | dict[str, torch.nn.Module],
                      announce: bool = False, cpus: CPUs | None = None) -> int:
    """Set torch's intra-op threads: `threads` when > 0, else the automatic choice for these
    modules (their distinct trainable parameters counted once). announce=True prints the choice as one
    line on stderr. Returns the thread count."""
    mods = list(modules.values()) if isinstance(modules, dict) else list(modules)
    if threads > 0:
        n, n_params, cpus = threads, None, None
    else:
        params = {id(p): p for m in mods for p in m.parameters()}
        trained = [p.numel() for p in params.values() if p.requires_grad]   # EMA copies do no work
        n_params = sum(trained) if trained else sum(p.numel() for p in params.values())
        cpus = cpus or available_cpus()
        n = choose_threads(n_params, cpus)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if announce:
        import sys

        print(describe(n, n_params, cpus), file=sys.stderr, flush=True)
    return n
