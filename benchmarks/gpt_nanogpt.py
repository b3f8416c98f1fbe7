"""genlab's gpt recipe against nanoGPT (the peer), both run by this script on the same machine.

    python benchmarks/gpt_nanogpt.py --nanogpt /tmp/nanogpt [--data ../shared/data/text/tinyshakespeare.txt]
        [--work /tmp/gpt-nanogpt-bench] [--parts speed,quality] [--threads N] [--ddp] [--out results.json]

`--nanogpt` is a checkout of https://github.com/karpathy/nanoGPT (not part of genlab, never
copied into it). The script only prepares a data folder in nanoGPT's shakespeare_char format
(train.bin / val.bin as uint16, meta.pkl as nanoGPT's prepare.py writes it) and runs nanoGPT's
train.py with command-line overrides.

speed:   nanoGPT's CPU configuration from its README (character tokens, first 90% of the text
         train / last 10% val, block 64, batch 12, 4 layers, 4 heads, 128 dims, dropout 0,
         2,000 iterations, lr 1e-3, warmup 100, cosine decay to 1e-4 at 2,000, AdamW wd 0.1,
         beta2 0.99, grad clip 1, no bias, eval every 250 iterations on 20 batches) against
         `genlab train gpt --preset nanogpt-cpu` (the same settings and model, except that the
         output layer is not tied to the token embedding; evaluation every 250 steps
         on the same number of validation tokens). Reported: tokens/s of training iterations
         (iterations that contain an evaluation are excluded on both sides, as are the first 10),
         total wall time, and validation loss after 2,000 iterations: nanoGPT's own estimator on
         its checkpoint (500 random validation batches, `--eval_only`), and for both programs the
         loss over every non-overlapping 64-token window of the validation split (nanoGPT's
         checkpoint loaded into genlab's GPT, which has the same architecture with bias=false,
         activation=gelu).
quality: wall time until validation loss <= 1.88: nanoGPT's README run continued (up to 5,000
         iterations, stopped at the first evaluation <= 1.88; its schedule unchanged: min lr after
         2,000), evaluated every 100 iterations on 100 batches (a noisy estimate: it can only make
         nanoGPT's time shorter); genlab with settings chosen for speed (see GENLAB_FAST), evaluated every
         100 steps on the whole validation split. Time counts training only (evaluations removed
         on both sides, by replacing an iteration that holds one with the median iteration).
whole:   whole-process wall time (launch to exit: imports, data, the thread probe, training,
         evaluations, checkpoints, plots, final samples) of nanoGPT's CPU configuration and of
         `genlab train gpt --preset nanogpt-cpu` with the speed part's settings, at --iters
         iterations each (the cosine schedule ending there on both sides), nanoGPT and genlab
         alternated --repeats times, medians; the validation loss on the full split after each
         run that has 2,000 iterations.
startup: genlab's time to first step: from launching `genlab train gpt --preset nanogpt-cpu` to
         its first metrics.jsonl row (step 1 done), with an empty corpus cache ("cold": tokenizer
         fitted, text tokenized) and with the cache the previous run left ("cached"), alternated
         --repeats times, medians.
--concurrent runs nanoGPT and genlab at the same time, one thread each (one core each on this
2-core machine): both see the same background load, which makes the ratio robust on a shared
machine. --ddp adds genlab under torchrun with 2 processes (1 thread each, gloo; global batch
unchanged), run afterwards; compare it with a sequential nanoGPT run with 2 threads.
Both programs run with the same OpenMP settings: OMP_WAIT_POLICY from --wait-policy (default:
unset, OpenMP's own spin-then-sleep) and OMP_NUM_THREADS=--threads when given.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
NANO_README = ["--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1", "--block_size=64",
               "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
               "--lr_decay_iters=2000", "--dropout=0.0"]
GENLAB_SAME = ["--preset", "nanogpt-cpu", "--set", "bf16=false", "--set", "novelty_samples=0", "--set", "log_every=1"]
# Time to quality: a shallower, wider model (2 layers x 192 dims: about the same parameters and
# cost per step, but it learned faster per step in probes), a higher peak lr, a schedule that
# ends where 1.88 is reached.
GENLAB_FAST = ["--preset", "nanogpt-cpu", "--set", "bf16=false", "--set", "novelty_samples=0", "--set", "log_every=1",
               "--set", "n_layer=2", "--set", "n_embd=192", "--set", "lr=2.5e-3", "--set", "max_steps=1200",
               "--set", "warmup_steps=50", "--set", "min_lr_ratio=0.05"]
TOKENS_PER_ITER = 12 * 64


def prepare_nanogpt_data(text_path: Path, work: Path) -> str:
    """nanoGPT's shakespeare_char layout: sorted characters, first 90% train, uint16 ids, meta.pkl."""
    name = "shakespeare_char_genlab_bench"
    d = work / "data" / name
    d.mkdir(parents=True, exist_ok=True)
    data = text_path.read_text(encoding="utf-8")
    chars = sorted(set(data))
    stoi = {c: i for i, c in enumerate(chars)}
    n = len(data)
    np.array([stoi[c] for c in data[:int(n * 0.9)]], dtype=np.uint16).tofile(d / "train.bin")
    np.array([stoi[c] for c in data[int(n * 0.9):]], dtype=np.uint16).tofile(d / "val.bin")
    with open(d / "meta.pkl", "wb") as f:  # nanoGPT's own format (it reads vocab_size from it)
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, f)
    # train.py exec()s configurator.py from the working directory
    link = work / "configurator.py"
    if not link.exists():
        link.symlink_to(Path(NANO) / "configurator.py")
    return name


def env_with_threads(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if WAIT_POLICY:
        # PASSIVE: idle OpenMP threads sleep instead of spinning. On a busy machine spinning threads
        # of a 2-thread run wait on each other (measured: 20x slower steps); on a quiet one sleeping
        # costs a wake-up per operator (measured: genlab's step 47.9 ms passive vs 27.3 ms default).
        env["OMP_WAIT_POLICY"] = WAIT_POLICY
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, stop_at_val: float | None = None
        ) -> tuple[str, float]:
    """Run a command, keeping its output in `log`; with stop_at_val, end it (nanoGPT) at the first
    evaluation line whose val loss is <= stop_at_val."""
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    lines, stopped = [], False
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            lines.append(line)
            m = re.match(r"step \d+: train loss [\d.]+, val loss ([\d.]+)", line)
            if stop_at_val is not None and m and float(m[1]) <= stop_at_val:
                p.terminate()
                stopped = True
                break
        p.wait()
    seconds = time.time() - t0
    out = "".join(lines)
    log.write_text(out)
    if p.returncode and not stopped:
        raise SystemExit(f"command failed ({p.returncode}), see {log}:\n{out[-2000:]}")
    return out, seconds


def train_seconds(dts: dict[int, float], eval_steps: set[int]) -> dict[int, float]:
    """Cumulative training seconds per step, each step holding an evaluation replaced by the median step."""
    med = statistics.median(v for k, v in dts.items() if k not in eval_steps)
    out, total = {}, 0.0
    for k in sorted(dts):
        total += med if k in eval_steps else dts[k]
        out[k] = total
    return out


def tokens_per_second(dts: dict[int, float], eval_steps: set[int], skip: int = 10) -> float:
    keep = [v for k, v in dts.items() if k not in eval_steps and k > skip]
    return TOKENS_PER_ITER * len(keep) / sum(keep)


# -- nanoGPT ---------------------------------------------------------------------------------------
def nanogpt(work: Path, dataset: str, extra: list[str], out_dir: str, threads: int | None,
            stop_at_val: float | None = None) -> dict:
    cmd = [PY, str(Path(NANO) / "train.py"), str(Path(NANO) / "config/train_shakespeare_char.py"), *NANO_README,
           f"--dataset={dataset}", f"--out_dir={out_dir}", *extra]
    stdout, wall = run(cmd, work, env_with_threads(threads), work / f"{out_dir}.log", stop_at_val)
    # "iter N: loss L, time Tms": T is the wall time of iteration N, including an evaluation at N
    dts = {int(m[1]): float(m[2]) / 1000 for m in re.finditer(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms", stdout, re.M)}
    evals = {int(m[1]): float(m[2]) for m in re.finditer(r"^step (\d+): train loss [\d.]+, val loss ([\d.]+)", stdout, re.M)}
    return {"wall_seconds": wall, "dts": dts, "evals": evals}


def nanogpt_eval(work: Path, dataset: str, out_dir: str, threads: int | None) -> float:
    """nanoGPT's own estimator on its last checkpoint: 500 random validation batches."""
    cmd = [PY, str(Path(NANO) / "train.py"), str(Path(NANO) / "config/train_shakespeare_char.py"), *NANO_README,
           f"--dataset={dataset}", f"--out_dir={out_dir}", "--init_from=resume", "--eval_only=True",
           "--eval_iters=500", "--always_save_checkpoint=False"]
    stdout, _ = run(cmd, work, env_with_threads(threads), work / f"{out_dir}-eval.log")
    return float(re.findall(r"val loss ([\d.]+)", stdout)[0])


def nanogpt_full_val(work: Path, dataset: str, out_dir: str) -> float:
    """nanoGPT's checkpoint scored like genlab's runs: every non-overlapping 64-token window of val.bin.

    nanoGPT's model (no biases, exact GELU, tied embeddings, learned positions, nn.Linear weights)
    is genlab's GPT with bias=False, activation="gelu", so its state_dict loads by name.
    """
    import torch
    import torch.nn.functional as F

    from genlab.models.gpt import GPT, GPTConfig

    ckpt = torch.load(work / out_dir / "ckpt.pt", map_location="cpu", weights_only=True)
    a = ckpt["model_args"]
    model = GPT(GPTConfig(vocab_size=a["vocab_size"], block_size=a["block_size"], n_layer=a["n_layer"],
                          n_head=a["n_head"], n_embd=a["n_embd"], bias=a["bias"], activation="gelu")).eval()
    sd = {k.removeprefix("_orig_mod.").removeprefix("transformer."): v for k, v in ckpt["model"].items()}
    model.load_state_dict({k: v for k, v in sd.items() if not k.endswith(".attn.bias")})
    val = torch.from_numpy(np.fromfile(work / "data" / dataset / "val.bin", dtype=np.uint16).astype(np.int64))
    block = a["block_size"]
    n = (len(val) - 1) // block
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, 12):
            starts = torch.arange(i, min(i + 12, n)) * block
            x = torch.stack([val[s:s + block] for s in starts])
            y = torch.stack([val[s + 1:s + 1 + block] for s in starts])
            total += F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum").item()
    return total / (n * block)


# -- genlab ----------------------------------------------------------------------------------------
def genlab_train(work: Path, text: Path, name: str, args: list[str], threads: int | None, ddp: bool = False) -> dict:
    out = work / name
    if out.exists():
        import shutil

        shutil.rmtree(out)
    launcher = ([PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "genlab"]
                if ddp else [PY, "-m", "genlab"])
    cmd = [*launcher, "train", "gpt", "--data", str(text), "--out", str(out), "--no-progress", *args]
    # the corpus cache of these runs (a user's second run on the text finds it filled)
    env = {**env_with_threads(1 if ddp else threads), "GENLAB_CACHE": str(work / "cache-runs")}
    _, wall = run(cmd, work, env, work / f"{name}.log")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    train = {r["step"]: r["time"] for r in rows if r["kind"] == "train"}
    dts = {s: train[s] - train.get(s - 1, 0.0) for s in train}
    evals = {r["step"]: r["val_loss"] for r in rows if r["kind"] == "eval"}
    return {"wall_seconds": wall, "dts": dts, "evals": evals, "run": str(out)}


def genlab_full_val(run_dir: str) -> float:
    import dataclasses

    import genlab

    r = genlab.load(run_dir, which="last", device="cpu")
    r.recipe.config = dataclasses.replace(r.recipe.config, eval_tokens=0, novelty_samples=0)
    r.recipe.load_data_once()
    with r.recipe.eval_mode():
        nats, tokens = r.recipe.validation_nll()
        return nats / tokens


def whole(work: Path, text: Path, dataset: str, threads: int | None, iters: list[int], repeats: int) -> dict:
    """Whole-process wall time, nanoGPT and genlab alternated, medians per iteration count."""
    genlab_args = [*GENLAB_SAME, "--set", "eval_every=250", "--set", "eval_tokens=15360", *GENLAB_EXTRA]
    first_step_seconds(work, text, "genlab-whole-warmup", work / "cache-runs", threads)  # fills the corpus cache
    res: dict = {}
    for n_it in iters:
        runs: dict[str, list[dict]] = {"nanogpt": [], "genlab": []}
        for i in range(repeats):
            order = [("nanogpt", "genlab"), ("genlab", "nanogpt")][i % 2]
            for name in order:
                if name == "nanogpt":
                    r = nanogpt(work, dataset, [f"--max_iters={n_it}", f"--lr_decay_iters={n_it}"],
                                f"nano-whole-{n_it}-{i}", threads)
                    r["tokens_per_s"] = tokens_per_second(r["dts"], {k for k in r["dts"] if k % 250 == 0})
                    if n_it >= 2000:
                        r["val_loss_full_split"] = nanogpt_full_val(work, dataset, f"nano-whole-{n_it}-{i}")
                else:
                    r = genlab_train(work, text, f"genlab-whole-{n_it}-{i}",
                                     [*genlab_args, "--set", f"max_steps={n_it}"], threads)
                    r["tokens_per_s"] = tokens_per_second(r["dts"], {k + 1 for k in r["evals"]})
                    r["train_loop_seconds"] = max(json.loads(x)["time"] for x in
                                                  (Path(r["run"]) / "metrics.jsonl").read_text().splitlines()
                                                  if '"train"' in x)
                    if n_it >= 2000:
                        r["val_loss_full_split"] = genlab_full_val(r["run"])
                r.pop("dts")
                runs[name].append(r)
                print(f"whole {n_it} {name} run {i}: {r['wall_seconds']:.2f} s, {r['tokens_per_s']:.0f} tokens/s",
                      flush=True)
        med = {k: statistics.median(r["wall_seconds"] for r in v) for k, v in runs.items()}
        res[str(n_it)] = {"runs": runs, "median_wall_seconds": med,
                          "median_tokens_per_s": {k: statistics.median(r["tokens_per_s"] for r in v)
                                                  for k, v in runs.items()},
                          "genlab_speedup_vs_nanogpt": med["nanogpt"] / med["genlab"]}
    return res


def first_step_seconds(work: Path, text: Path, name: str, cache: Path, threads: int | None,
                       extra: list[str] = ()) -> float:
    """Seconds from launching `genlab train` until metrics.jsonl holds its first row (step 1)."""
    out = work / name
    if out.exists():
        import shutil

        shutil.rmtree(out)
    env = {**env_with_threads(threads), "GENLAB_CACHE": str(cache)}
    cmd = [PY, "-m", "genlab", "train", "gpt", "--data", str(text), "--out", str(out), "--no-progress",
           *GENLAB_SAME, "--set", "max_steps=100000", *GENLAB_EXTRA, *extra]
    metrics = out / "metrics.jsonl"
    t0 = time.perf_counter()
    with subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as p:
        while p.poll() is None:
            if metrics.is_file() and metrics.stat().st_size:
                seconds = time.perf_counter() - t0
                p.kill()
                p.wait()
                return seconds
            time.sleep(0.002)
        raise SystemExit(f"genlab ended before its first step: {p.stderr.read().decode()[-2000:]}")


def startup(work: Path, text: Path, threads: int | None, repeats: int, extra: list[str]) -> dict:
    """Time to first step with an empty corpus cache and with a warm one, alternated, medians.
    extra: more genlab arguments (e.g. --set tokenizer=word)."""
    import shutil

    cached_dir = work / "cache-warm"
    shutil.rmtree(cached_dir, ignore_errors=True)
    first_step_seconds(work, text, "genlab-startup-warmup", cached_dir, threads, extra)  # fills it (and the OS's file cache)
    cold, cached = [], []
    for i in range(repeats):
        cold_dir = work / "cache-cold"
        shutil.rmtree(cold_dir, ignore_errors=True)
        for kind in (("cold", "cached") if i % 2 == 0 else ("cached", "cold")):
            if kind == "cold":
                shutil.rmtree(cold_dir, ignore_errors=True)
                cold.append(first_step_seconds(work, text, "genlab-startup", cold_dir, threads, extra))
            else:
                cached.append(first_step_seconds(work, text, "genlab-startup", cached_dir, threads, extra))
        print(f"startup run {i}: cold {cold[-1]:.2f} s, cached {cached[-1]:.2f} s", flush=True)
    return {"extra": extra, "cold_seconds": cold, "cached_seconds": cached, "median_cold_seconds": statistics.median(cold),
            "median_cached_seconds": statistics.median(cached)}


def side_by_side(first, second, concurrent: bool, second_first: bool = False):
    """Run two benchmark jobs one after the other, or at the same time (each then sees the same load)."""
    if not concurrent:
        if second_first:
            b = second()
            return first(), b
        return first(), second()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as ex:
        a, b = ex.submit(first), ex.submit(second)
        return a.result(), b.result()


def speed(work: Path, text: Path, dataset: str, threads: int | None, ddp: bool, concurrent: bool,
          genlab_first: bool = False) -> dict:
    # same number of validation tokens per evaluation as nanoGPT's 20 batches of 12 x 64
    genlab_args = [*GENLAB_SAME, "--set", "eval_every=250", "--set", "eval_tokens=15360"]
    n, g = side_by_side(
        lambda: nanogpt(work, dataset, ["--always_save_checkpoint=True"], "nano-speed", threads),
        lambda: genlab_train(work, text, "genlab-speed", genlab_args, threads), concurrent, genlab_first)
    n["val_loss_full_split"] = nanogpt_full_val(work, dataset, "nano-speed")  # before --eval_only may rewrite it
    n["val_loss_own_estimator"] = nanogpt_eval(work, dataset, "nano-speed", threads)
    n["tokens_per_s"] = tokens_per_second(n["dts"], {k for k in n["dts"] if k % 250 == 0})
    res = {"nanogpt": n}
    runs = [("genlab", g)]
    if ddp:
        runs.append(("genlab-ddp2", genlab_train(work, text, "genlab-ddp2-speed", genlab_args, threads, True)))
    for name, g in runs:
        g["tokens_per_s"] = tokens_per_second(g["dts"], {k + 1 for k in g["evals"]})
        g["val_loss_full_split"] = genlab_full_val(g["run"])
        g["speed_ratio_vs_nanogpt"] = g["tokens_per_s"] / n["tokens_per_s"]
        res[name] = g
    return res


def time_to(target: float, evals: dict[int, float], seconds: dict[int, float]) -> tuple[int | None, float | None]:
    for step in sorted(evals):
        if evals[step] <= target and step in seconds:
            return step, seconds[step]
    return None, None


def quality(work: Path, text: Path, dataset: str, threads: int | None, ddp: bool, concurrent: bool,
            target: float = 1.88) -> dict:
    genlab_args = [*GENLAB_FAST, "--set", "eval_every=100", "--set", "eval_tokens=0"]
    n, g = side_by_side(
        lambda: nanogpt(work, dataset, ["--max_iters=5000", "--eval_interval=100", "--eval_iters=100"],
                        "nano-quality", threads, stop_at_val=target),
        lambda: genlab_train(work, text, "genlab-quality", genlab_args, threads), concurrent)
    # nanoGPT's "step N" evaluation sees the model after N updates, i.e. before iteration N runs
    secs = train_seconds(n["dts"], {k for k in n["dts"] if k % 100 == 0})
    secs_before = {0: 0.0, **{k + 1: v for k, v in secs.items()}}  # time spent before iteration k+1
    n["step_reached"], n["seconds_to_target"] = time_to(target, n["evals"], secs_before)
    res = {"nanogpt": n}
    runs = [("genlab", g)]
    if ddp:
        runs.append(("genlab-ddp2", genlab_train(work, text, "genlab-ddp2-quality", genlab_args, threads, True)))
    for name, g in runs:
        secs = train_seconds(g["dts"], {k + 1 for k in g["evals"]})
        g["step_reached"], g["seconds_to_target"] = time_to(target, g["evals"], secs)
        if g["seconds_to_target"] and n["seconds_to_target"]:
            g["time_ratio_vs_nanogpt"] = g["seconds_to_target"] / n["seconds_to_target"]
        res[name] = g
    return res


def main() -> None:
    global NANO, WAIT_POLICY, GENLAB_EXTRA
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nanogpt", required=True, help="path of a nanoGPT checkout")
    p.add_argument("--data", default=str(REPO.parent / "shared/data/text/tinyshakespeare.txt"))
    p.add_argument("--work", default="/tmp/gpt-nanogpt-bench")
    p.add_argument("--parts", default="speed,quality")
    p.add_argument("--threads", type=int, default=None, help="OMP threads for both (default: torch's default)")
    p.add_argument("--ddp", action="store_true", help="also run genlab with torchrun, 2 processes (afterwards)")
    p.add_argument("--genlab-first", action="store_true", help="sequential speed part: run genlab before nanoGPT")
    p.add_argument("--concurrent", action="store_true",
                   help="run nanoGPT and single-process genlab at the same time, one thread each")
    p.add_argument("--wait-policy", default="", choices=["", "PASSIVE", "ACTIVE"],
                   help="OMP_WAIT_POLICY for both programs (default: OpenMP's own; PASSIVE on a shared machine)")
    p.add_argument("--iters", default="500,2000", help="whole part: iteration counts")
    p.add_argument("--genlab-threads", type=int, default=0,
                   help="whole and startup parts: genlab's threads=N (default 0: its automatic choice, whose "
                        "load-average input still counts the previous benchmark process for a minute)")
    p.add_argument("--genlab-set", action="append", default=[], metavar="KEY=VALUE",
                   help="whole and startup parts: more genlab config, after the preset's (e.g. bf16=true)")
    p.add_argument("--startup-set", action="append", default=[], metavar="KEY=VALUE",
                   help="startup part: more genlab config (e.g. tokenizer=word)")
    p.add_argument("--repeats", type=int, default=3, help="whole and startup parts: alternated repeats")
    p.add_argument("--out", default=None, help="JSON results (default: WORK/results.json)")
    a = p.parse_args()
    WAIT_POLICY = a.wait_policy
    GENLAB_EXTRA = ["--set", f"threads={a.genlab_threads}"] if a.genlab_threads else []
    GENLAB_EXTRA += [x for kv in a.genlab_set for x in ("--set", kv)]
    NANO = str(Path(a.nanogpt).resolve())
    if not (Path(NANO) / "train.py").is_file():
        raise SystemExit(f"not a nanoGPT checkout: {NANO}")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    text = Path(a.data).resolve()
    dataset = prepare_nanogpt_data(text, work)
    if a.concurrent:
        a.threads = 1
    results: dict = {"load_avg_start": os.getloadavg(), "threads": a.threads, "concurrent": a.concurrent,
                     "omp_wait_policy": WAIT_POLICY or "default"}
    if "speed" in a.parts:
        results["speed"] = speed(work, text, dataset, a.threads, a.ddp, a.concurrent, a.genlab_first)
    if "quality" in a.parts:
        results["quality"] = quality(work, text, dataset, a.threads, a.ddp, a.concurrent)
    if "whole" in a.parts:
        results["whole"] = whole(work, text, dataset, a.threads, [int(x) for x in a.iters.split(",")], a.repeats)
    if "startup" in a.parts:
        extra = [x for kv in a.startup_set for x in ("--set", kv)]
        results["startup"] = startup(work, text, a.threads, a.repeats, extra)
    results["load_avg_end"] = os.getloadavg()
    out = Path(a.out) if a.out else work / "results.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    for part, res in results.items():
        if part == "whole":
            for n_it, r in res.items():
                print(part, n_it, json.dumps({k: v for k, v in r.items() if k != "runs"}))
                for name, rs in r["runs"].items():
                    print("   ", name, "walls", [round(x["wall_seconds"], 2) for x in rs], "val",
                          [round(x["val_loss_full_split"], 4) for x in rs if "val_loss_full_split" in x])
            continue
        if not isinstance(res, dict) or part not in ("speed", "quality"):
            print(part, res)
            continue
        for name, r in res.items():
            keep = {k: v for k, v in r.items() if k not in ("dts", "evals")}
            print(part, name, json.dumps(keep, default=str))
    print(f"results: {out}")


NANO = ""
WAIT_POLICY = ""
GENLAB_EXTRA: list[str] = []
if __name__ == "__main__":
    main()
