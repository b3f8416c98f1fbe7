"""How many CPU threads a run uses when the config leaves `threads` at 0 (automatic).

torch's default is one thread per core, which is right for a big model on an idle machine and
badly wrong otherwise: on a machine whose cores are already busy every extra thread waits for a
core (on a 2-core machine under load 3.5-6.7, recipes ran 4-20x slower per step with torch's
default than with one thread), and a tiny step spends more time synchronising threads than
computing. So the choice looks at both sides:

- the CPUs free for this process: its affinity mask (os.sched_getaffinity), the cgroup CPU quota
  (cgroup v2 cpu.max, or v1 cfs_quota_us / cfs_period_us) and OMP_NUM_THREADS when the user set
  it, shared among the local processes of a distributed run (LOCAL_WORLD_SIZE), minus the CPUs
  other processes keep busy: the 1-minute load average less this run's own processes, times the
  share of the other runnable processes that compete with this one (a process niced below this
  one, e.g. `nice -n 19` background work, gets ~1.5% of a core beside it: it counts in the load
  average but takes nothing; read from /proc, a few samples);
- whether more threads make this run's step faster: with more than one free CPU, a short probe
  times the recipe's real training step at one thread and at the free count (and half of it when
  four or more are free), alternating, median of each, within about a second; the fewest threads
  whose step is within WITHIN of the fastest win. The model's size is no proxy for this: a
  0.08M-parameter CNN steps 1.75x faster on a second core, a 0.09M-parameter MLP 18% slower.
- with no step to time (a loaded run that samples or evaluates, data preparation), all free CPUs.

The count applies to torch's intra-op threads and to the BLAS pools numpy and scipy use (the
image metrics' eigendecompositions): left at one per core, those spin on busy cores too (a
first FID evaluation took 31 s instead of 1.1 s beside two busy processes).
`threads=N` in the config forces N. The choice and its reasons are one line in the run header.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from threadpoolctl import threadpool_limits

WITHIN = 1.10          # the fewest threads whose step is at most 10% slower than the fastest
PROBE_SECONDS = 1.0    # the probe starts no new round of timings after this long
PROBE_ROUNDS = 3       # rounds of timings (each times every candidate count once), at most
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")


@dataclass
class CPUs:
    """What the machine offers this process right now."""

    affinity: int                # CPUs in the affinity mask
    quota: float | None = None   # cgroup CPU quota in CPUs (None: unlimited)
    load: float = 0.0            # 1-minute load average (runnable processes, this one included)
    local_processes: int = 1     # processes of this run on this machine (distributed training)
    omp: int | None = None       # OMP_NUM_THREADS when set: the user's cap
    competing: float = 1.0       # share of other runnable processes not niced below this one

    @property
    def usable(self) -> int:
        """CPUs this process may use: affinity, quota and OMP_NUM_THREADS, shared among the run's
        local processes (OMP_NUM_THREADS is already per process)."""
        n = float(self.affinity)
        if self.quota is not None:
            n = min(n, self.quota)
        n = math.floor(n / max(1, self.local_processes))
        if self.omp is not None:
            n = min(n, self.omp)
        return max(1, n)

    @property
    def free(self) -> int:
        """Usable CPUs not already busy with other processes (the load counts this run too)."""
        others = max(0.0, self.load - self.local_processes) * self.competing
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


def competing_share(proc: Path = PROC, samples: int = 5, interval: float = 0.02) -> float:
    """Of the other processes found runnable in `samples` looks at /proc, the share whose nice
    value is at most this process's (they compete for a core; a higher nice value yields).
    1.0 when none was runnable or /proc cannot be read: the load average is then taken as is."""
    me, mine = os.getpid(), os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0
    runnable = competing = 0
    for i in range(samples):
        if i:
            time.sleep(interval)
        try:
            entries = [e for e in os.listdir(proc) if e.isdigit() and int(e) != me]
        except OSError:
            return 1.0
        for pid in entries:
            try:
                fields = (proc / pid / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue   # gone meanwhile
            if fields[0] == "R":
                runnable += 1
                competing += int(fields[16]) <= mine
    return competing / runnable if runnable else 1.0


def _positive_int(text: str | None) -> int | None:
    try:
        n = int(text or "")
    except ValueError:
        return None
    return n if n >= 1 else None


def available_cpus() -> CPUs:
    """Read affinity, cgroup quota, load average, OMP_NUM_THREADS and the local process count."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # not on Linux
        affinity = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    local = _positive_int(os.environ.get("LOCAL_WORLD_SIZE")) or 1
    return CPUs(affinity=affinity, quota=cgroup_quota(), load=load, local_processes=local,
                omp=_positive_int(os.environ.get("OMP_NUM_THREADS")), competing=competing_share())


def candidates(cpus: CPUs) -> list[int]:
    """Thread counts the probe times: one, the free CPUs, and half of them when four or more are free."""
    free = cpus.free
    return sorted({1, free} | ({free // 2} if free >= 4 else set()))


def time_step(step: Callable[[], None], counts: list[int], budget: float = PROBE_SECONDS,
              rounds: int = PROBE_ROUNDS) -> dict[int, float]:
    """Median seconds of `step()` at each thread count. One untimed call per count first (the
    first call allocates and starts the thread pool), then rounds that time every count in
    turn, so a change in the machine's load hits them alike; at least one round, no new round
    after `budget` seconds. torch's thread count is restored."""
    before = torch.get_num_threads()
    seconds: dict[int, list[float]] = {n: [] for n in counts}
    start = time.perf_counter()
    try:
        for n in counts:
            torch.set_num_threads(n)
            step()
        for _ in range(rounds):
            for n in counts:
                torch.set_num_threads(n)
                t = time.perf_counter()
                step()
                seconds[n].append(time.perf_counter() - t)
            if time.perf_counter() - start > budget:
                break
    finally:
        torch.set_num_threads(before)
    return {n: statistics.median(s) for n, s in seconds.items()}


def choose_threads(cpus: CPUs, timings: dict[int, float] | None) -> int:
    """The thread count for `timings` (seconds per step by thread count, from time_step) on
    `cpus`: one when only one CPU is free; all free CPUs when there is nothing timed; else the
    fewest threads whose step is within WITHIN of the fastest, never above the free CPUs."""
    if cpus.free == 1:
        return 1
    timed = {n: t for n, t in (timings or {}).items() if n <= cpus.free}
    if not timed:
        return cpus.free
    fastest = min(timed.values())
    return min(n for n, t in timed.items() if t <= fastest * WITHIN)


def describe(n: int, cpus: CPUs | None, timings: dict[int, float] | None, failed: bool = False) -> str:
    """The run-header line for a thread choice."""
    if cpus is None:
        return f"threads: {n} (forced by threads={n})"
    quota = f", cgroup quota {cpus.quota:g}" if cpus.quota is not None else ""
    omp = f", OMP_NUM_THREADS={cpus.omp}" if cpus.omp is not None else ""
    local = f", {cpus.local_processes} local processes" if cpus.local_processes > 1 else ""
    niced = f" ({100 * (1 - cpus.competing):.0f}% of it niced)" if cpus.competing < 1 else ""
    free = f"{cpus.affinity} CPUs{quota}{omp}{local}, load {cpus.load:.1f}{niced} -> {cpus.free} free"
    if cpus.free == 1:
        why = free
    elif failed:
        why = f"{free}; the step probe failed"
    elif timings:
        steps = ", ".join(f"{1000 * t:.1f} ms at {k}" for k, t in sorted(timings.items()))
        why = f"{free}; step {steps}"
    else:
        why = f"{free}; no training step to time"
    return f"threads: {n} (auto: {why}; force with --set threads=N)"


def configure_threads(threads: int, *, step: Callable[[], None] | None = None, announce: bool = False,
                      cpus: CPUs | None = None,
                      timer: Callable[[Callable[[], None], list[int]], dict[int, float]] | None = None) -> int:
    """Set torch's intra-op threads: `threads` when > 0, else the automatic choice, timing
    `step` (one training step that changes nothing, e.g. from engine.trainer.step_probe) when
    more than one CPU is free. announce=True prints the choice as one line on stderr. Returns
    the thread count."""
    timings, failed = None, False
    if threads > 0:
        n, cpus = threads, None
    else:
        cpus = cpus or available_cpus()
        if cpus.free > 1 and step is not None:
            try:
                timings = (timer or time_step)(step, candidates(cpus))
            except Exception:   # training meets (and reports) the problem; one thread meanwhile
                failed = True
        n = 1 if failed else choose_threads(cpus, timings)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    threadpool_limits(n, user_api="blas")
    if announce:
        print(describe(n, cpus, timings, failed), file=sys.stderr, flush=True)
    return n
