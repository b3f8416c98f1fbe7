"""Where one training step of `genlab train gpt --preset nanogpt-cpu` spends its time.

Builds the recipe exactly as `genlab train` does (the preset, the tokenized corpus, the
trainer's optimizer and schedule) and runs its real steps: the batch (`recipe.batch`), the
forward, the loss, backward, clipping and AdamW (`recipe.training_step`), and the trainer's
per-step bookkeeping (reading the logged loss). Two parts:

- `--time`: median milliseconds per step over `--steps` steps, after 20 warm-up steps; compare
  it with `benchmarks/gpt_gemm_floor.py` at the same thread count.
- `--profile`: torch.profiler over `--steps` steps; the self CPU time of every operator,
  summed into groups (matrix products, attention, LayerNorm, GELU, the optimizer, clipping,
  the loss, embeddings, the batch, element-wise and copies), as milliseconds per step and
  shares. The profiler's own overhead inflates small operators, so read it as a breakdown,
  and take step times from `--time`.
- `--probe`: what the automatic thread choice (threads=0, engine/threads.py) costs at the start
  of a run on a quiet machine of this many CPUs: its step probe (throwaway optimizers, one
  untimed and up to three timed steps per candidate thread count), timed as `genlab train`
  runs it.
- `--attention`: the model's attention alone (batch 12, 4 heads, 64 positions, head size 32;
  forward + backward, four layers' worth) through F.scaled_dot_product_attention with
  is_causal (the model's path), with an explicit boolean mask, forced to the math backend, and
  written out (scores, masked softmax, weighted sum); alternated, medians, and the largest
  difference from the model's path.

    python benchmarks/gpt_step_profile.py [--threads 2] [--steps 200] [--time] [--profile]
        [--attention] [--data ../shared/data/text/tinyshakespeare.txt] [--set KEY=VALUE ...] [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from genlab.api import build_config
from genlab.engine.rundir import RunDir
from genlab.engine.trainer import Trainer
from genlab.recipes import get_recipe

REPO = Path(__file__).resolve().parents[1]

# operator name (substring, first match wins) -> group
GROUPS = [
    ("scaled_dot_product", "attention (SDPA fwd+bwd)"), ("flash_attention", "attention (SDPA fwd+bwd)"),
    ("_efficient_attention", "attention (SDPA fwd+bwd)"), ("softmax", "attention (SDPA fwd+bwd)"),
    ("aten::addmm", "matrix products"), ("aten::mm", "matrix products"), ("aten::bmm", "matrix products"),
    ("aten::matmul", "matrix products"), ("aten::linear", "matrix products"),
    ("layer_norm", "LayerNorm fwd+bwd"), ("gelu", "GELU fwd+bwd"),
    ("adamw", "AdamW (fused)"), ("_fused_adam", "AdamW (fused)"), ("Optimizer.step", "AdamW (fused)"),
    ("_foreach_norm", "grad clipping"), ("clip_grad", "grad clipping"), ("aten::linalg_vector_norm", "grad clipping"),
    ("_foreach_mul", "grad clipping"), ("aten::norm", "grad clipping"),
    ("cross_entropy", "loss"), ("nll_loss", "loss"), ("log_softmax", "loss"),
    ("embedding", "embeddings fwd+bwd"),
    ("randint", "batch"), ("aten::stack", "batch"), ("isfinite", "finiteness check"),
    ("aten::copy_", "copies / contiguous"), ("aten::clone", "copies / contiguous"),
    ("aten::contiguous", "copies / contiguous"), ("aten::cat", "copies / contiguous"),
    ("zero", "zeroing / allocation"), ("aten::fill_", "zeroing / allocation"), ("aten::empty", "zeroing / allocation"),
    ("aten::add", "element-wise (residual adds, sums)"), ("aten::mul", "element-wise (residual adds, sums)"),
    ("aten::sum", "element-wise (residual adds, sums)"), ("aten::div", "element-wise (residual adds, sums)"),
]


def group_of(name: str) -> str:
    low = name.lower()
    for key, group in GROUPS:
        if key.lower() in low:
            return group
    return "other operators"


def build(data: str, threads: int, sets: list[str], work: Path):
    """The recipe and trainer of `genlab train gpt --preset nanogpt-cpu`, ready to step."""
    torch.set_num_threads(threads)
    cls = get_recipe("gpt")
    cfg = build_config(cls, "nanogpt-cpu", None, ["novelty_samples=0", f"threads={threads}", *sets], data=data)
    run = RunDir(work / "run")
    r = cls(cfg, "cpu", run_dir=run.path)
    r.setup(training=True)
    trainer = Trainer(r, run, progress=False)
    trainer.prepare()
    r.set_mode(True)
    return r


def make_step(r):
    """One trainer step: batch, training_step (forward, loss, backward, clip, AdamW, schedule),
    and the trainer's reading of the logged scalars."""
    calls = [0]

    def step() -> None:
        calls[0] += 1
        r.start_micro_batch(0, 1)
        logs = r.training_step(r.batch(calls[0] - 1), calls[0])
        for v in logs.values():
            float(v)
    return step


def time_steps(step, steps: int) -> dict:
    t = time.perf_counter()
    for _ in range(20):   # with compile=true, the first step compiles
        step()
    warmup = time.perf_counter() - t
    ts = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t)
    return {"median_ms": round(1e3 * statistics.median(ts), 2), "mean_ms": round(1e3 * statistics.fmean(ts), 2),
            "p10_ms": round(1e3 * sorted(ts)[len(ts) // 10], 2), "steps": steps,
            "first_20_steps_seconds": round(warmup, 2)}


def profile_steps(step, steps: int) -> dict:
    from torch.profiler import ProfilerActivity, profile

    for _ in range(20):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for _ in range(steps):
            step()
        wall = time.perf_counter() - t
    groups: dict[str, float] = defaultdict(float)
    ops: dict[str, float] = defaultdict(float)
    for e in prof.key_averages():
        groups[group_of(e.key)] += e.self_cpu_time_total
        ops[e.key] += e.self_cpu_time_total
    total = sum(groups.values())
    per_step = {g: us / steps / 1e3 for g, us in groups.items()}
    return {"profiled_wall_ms_per_step": round(1e3 * wall / steps, 2),
            "operator_self_ms_per_step": round(total / steps / 1e3, 2),
            "groups_ms_per_step": {g: round(v, 3) for g, v in sorted(per_step.items(), key=lambda kv: -kv[1])},
            "groups_share": {g: round(us / total, 4) for g, us in sorted(groups.items(), key=lambda kv: -kv[1])},
            "top_ops_ms_per_step": {k: round(v / steps / 1e3, 3)
                                    for k, v in sorted(ops.items(), key=lambda kv: -kv[1])[:25]}}


def probe_seconds(r, cpus: int) -> dict:
    import os

    from genlab.engine.threads import CPUs, configure_threads
    from genlab.engine.trainer import step_probe

    quiet = CPUs(affinity=cpus, load=1.0, competing=1.0)   # nothing else running
    seconds = []
    for _ in range(2):   # the first also imports torch._dynamo (the first optimizer), which a run pays anyway
        t = time.perf_counter()
        with step_probe(r) as step:
            n = configure_threads(0, step=step, cpus=quiet)
        seconds.append(round(time.perf_counter() - t, 3))
    return {"first_probe_seconds": seconds[0], "probe_seconds": seconds[1], "chosen_threads": n, "cpus": cpus,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def attention_variants(rounds: int = 30) -> dict:
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, H, T, D = 12, 4, 64, 32
    torch.manual_seed(0)
    qkv = torch.randn(B, T, 3 * H * D, requires_grad=True)
    grad = torch.randn(B, H, T, D)
    keep = torch.ones(T, T, dtype=torch.bool).tril()

    def heads():
        return [t.view(B, T, H, D).transpose(1, 2) for t in qkv.split(H * D, dim=2)]

    def causal():
        return F.scaled_dot_product_attention(*heads(), is_causal=True)

    def masked():
        return F.scaled_dot_product_attention(*heads(), attn_mask=keep)

    def math_backend():
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(*heads(), is_causal=True)

    def explicit():
        q, k, v = heads()
        att = (q @ k.transpose(-2, -1)) * D ** -0.5
        return att.masked_fill(~keep, float("-inf")).softmax(-1) @ v

    variants = {"sdpa is_causal (model)": causal, "sdpa bool mask": masked, "sdpa math backend": math_backend,
                "explicit softmax": explicit}
    ref = causal().detach()
    out, ts = {}, {k: [] for k in variants}
    for name, fn in variants.items():
        out[name] = {"max_abs_diff": float((fn().detach() - ref).abs().max())}
    for _ in range(rounds):
        for name, fn in variants.items():
            t = time.perf_counter()
            for _ in range(4):   # four layers
                fn().backward(grad)
                qkv.grad = None
            ts[name].append(time.perf_counter() - t)
    for name in variants:
        out[name]["fwd_bwd_ms_per_step"] = round(1e3 * statistics.median(ts[name]), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/text/tinyshakespeare.txt"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--time", action="store_true", help="median step time")
    ap.add_argument("--profile", action="store_true", help="torch.profiler breakdown")
    ap.add_argument("--attention", action="store_true", help="attention variants, alone")
    ap.add_argument("--probe", action="store_true", help="cost of the automatic thread choice's step probe")
    ap.add_argument("--set", action="append", default=[], help="extra config KEY=VALUE for the recipe")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if not (a.time or a.profile or a.attention or a.probe):
        a.time = a.profile = True
    with tempfile.TemporaryDirectory(prefix="gpt-step-") as tmp:
        r = build(a.data, a.threads, a.set, Path(tmp))
        step = make_step(r)
        out: dict = {"threads": a.threads, "torch": torch.__version__, "set": a.set}
        if a.probe:   # first: a fresh process pays what `genlab train` pays
            out["probe"] = probe_seconds(r, a.threads)
        if a.time:
            out["time"] = time_steps(step, a.steps)
        if a.profile:
            out["profile"] = profile_steps(step, a.steps)
        if a.attention:
            out["attention"] = attention_variants()
    text = json.dumps(out, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
