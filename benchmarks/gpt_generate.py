"""Generation speed: genlab's KV-cache generation vs transformers' `generate`, same weights.

    python benchmarks/gpt_generate.py [--parts speed,kernels,agreement] [--new 256] [--repeats 5] [--kernel-rows 1 4]
                                      [--threads N] [--prompts 20] [--out results.json]

A random GPT-2-small-shaped model (12 layers, 12 heads, 768 dims, 50,257 tokens, 1,024
positions) is built with transformers (no download), saved with save_pretrained, imported
through `genlab import gpt2` (genlab.api.import_gpt2) and loaded twice: `genlab.load(run)`
(float32 linear layers through oneDNN) and `genlab.load(run, weights="float16")`
(genlab.sampling.weights).

- speed: batch 1, greedy, the same 16-token prompt, exactly `--new` tokens (end-of-text
  disabled); in one process, the runs alternated round by round: transformers' `generate`,
  genlab float32, genlab float16, and three variants of genlab float32 that undo one change
  each: nn.Linear (F.linear, MKL; the model as trained), the tuple cache (concatenated
  every step instead of KVBuffers), no cache at all. Median tokens/s of
  each, and the bytes each token reads (the linear layers' weights; the KV cache at the mean
  length) per second. The token sequences are compared.
- kernels: every weight matrix product of one decoding step as bare calls, float32 through
  F.linear (MKL) in both layouts and through oneDNN's linear (`--kernel-rows` rows: 1 is
  decoding one sequence, 4 a server's small batch), float16 / bfloat16 (F.linear) / int8
  weight-only (torch._weight_int8pack_mm, bfloat16 activations; one row): min over repeats, at
  1 thread and at the run's thread count.
- agreement: float16 weights against float32 on `--prompts` random prompts: both models are fed
  float32's greedy continuation one token at a time (the decoding path), so "greedy equal" =
  float16 picks the same token at every step; the largest logit difference over all steps.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PROMPT_LEN = 16


def synthetic_gpt2_tokenizer(d: Path) -> None:
    """A 50,257-token byte-level vocabulary: 256 bytes, 50,000 two-byte merges, <|endoftext|>."""
    from genlab.tokenizers import bytes_to_unicode

    sym = [bytes_to_unicode()[b] for b in range(256)]
    merges = [(sym[i % 256], sym[i // 256]) for i in range(50000)]
    vocab = {s: i for i, s in enumerate(sym + [a + b for a, b in merges])}
    vocab["<|endoftext|>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (d / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")


class TupleCache(nn.Module):
    """The model without `new_cache`: generate() falls back to the tuple cache."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, idx, past_kv=None, use_cache=False, last_only=False):
        return self.model(idx, past_kv=past_kv, use_cache=use_cache, last_only=last_only)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every linear layer's parameters: what one decoding step reads from memory."""
    return sum(t.numel() * t.element_size() for m in model.modules() if hasattr(m, "in_features")
               for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)])


def build(tmp: Path):
    import transformers

    import genlab
    from genlab.engine.rundir import RunDir
    from genlab.models.gpt import GPT

    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    hf.save_pretrained(tmp / "hf")
    synthetic_gpt2_tokenizer(tmp / "hf")
    t0 = time.time()
    run_dir = genlab.api.import_gpt2(tmp / "hf", tmp / "run")
    import_seconds = time.time() - t0
    fp32 = genlab.load(run_dir, device="cpu").recipe.modules["model"].eval()
    fp16 = genlab.load(run_dir, device="cpu", weights="float16").recipe.modules["model"].eval()
    trained = GPT(fp32.config).eval()  # nn.Linear layers, as trained
    RunDir(run_dir).load_weights({"model": trained})
    return hf, fp32, fp16, trained, import_seconds, transformers.__version__


def speed(hf, fp32, fp16, trained, a) -> dict:
    from genlab.sampling.generate import generate

    prompt = torch.randint(0, 50257, (1, PROMPT_LEN), generator=torch.Generator().manual_seed(1))

    def run_hf() -> list[int]:
        with torch.no_grad():
            out = hf.generate(prompt, max_new_tokens=a.new, min_new_tokens=a.new, do_sample=False)
        return out[0, PROMPT_LEN:].tolist()

    def genlab_run(model: nn.Module, use_cache: bool = True):
        return lambda: generate(model, prompt.tolist(), a.new, temperature=0, use_cache=use_cache)[0].tokens

    runs = {"transformers": run_hf, "genlab float32": genlab_run(fp32), "genlab float16": genlab_run(fp16),
            "genlab float32, F.linear (MKL)": genlab_run(trained),
            "genlab float32, tuple cache": genlab_run(TupleCache(fp32)),
            "genlab float32, no cache": genlab_run(fp32, use_cache=False)}
    for fn in runs.values():  # warm-up (allocator, oneDNN/MKL kernels); the no-cache run on a few tokens
        if fn is not runs["genlab float32, no cache"]:
            fn()
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    tokens = {}
    for _ in range(a.repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            tokens[name] = fn()
            seconds[name].append(time.perf_counter() - t)
    rate = {k: a.new / statistics.median(v) for k, v in seconds.items()}
    cfg = fp32.config
    mean_len = PROMPT_LEN + (a.new + 1) / 2
    kv_bytes = 2 * cfg.n_layer * mean_len * cfg.n_embd * 4  # keys and values read per step, on average
    read = {"genlab float32": weight_bytes(fp32), "genlab float16": weight_bytes(fp16),
            "transformers": weight_bytes(fp32)}
    ref = tokens["genlab float32"]
    return {
        "seconds": seconds, "tokens_per_s": rate,
        "ratios": {
            "genlab float32 / transformers": rate["genlab float32"] / rate["transformers"],
            "genlab float16 / transformers": rate["genlab float16"] / rate["transformers"],
            "genlab float32 / no cache": rate["genlab float32"] / rate["genlab float32, no cache"],
            "genlab float16 / genlab float32": rate["genlab float16"] / rate["genlab float32"],
            "KVBuffers / tuple cache": rate["genlab float32"] / rate["genlab float32, tuple cache"],
            "oneDNN / F.linear (MKL)": rate["genlab float32"] / rate["genlab float32, F.linear (MKL)"],
        },
        "bytes_per_token": {k: v + kv_bytes for k, v in read.items()}, "kv_cache_bytes_mean": kv_bytes,
        "gb_per_s": {k: (v + kv_bytes) * rate[k] / 1e9 for k, v in read.items()},
        "tokens_equal_to_genlab_float32": {k: next((i for i, (x, y) in enumerate(zip(v, ref)) if x != y), a.new)
                                           for k, v in tokens.items()},
    }


def kernels(trained: nn.Module, rows: int, repeats: int = 20) -> dict:
    """ms for all weight matrix products of one decoding step (`rows` rows), as bare calls."""
    w32 = [m.weight.detach() for m in trained.modules() if isinstance(m, nn.Linear)]
    variants = {"float32 (out, in): F.linear (MKL)": (w32, torch.float32),
                "float32 (in, out): F.linear (MKL)": ([w.t().contiguous().t() for w in w32], torch.float32),
                "float16": ([w.half() for w in w32], torch.float16),
                "bfloat16 (oneDNN)": ([w.bfloat16() for w in w32], torch.bfloat16)}
    w8 = []
    for w in w32:
        scale = w.abs().amax(1).clamp(min=1e-12) / 127
        w8.append(((w / scale[:, None]).round().to(torch.int8), scale.bfloat16()))
    xs = {n: torch.randn(rows, n) for n in {w.shape[1] for w in w32}}

    def linear(ws, dt):
        def f():
            for w in ws:
                F.linear(xs[w.shape[1]].to(dt), w)
        return f

    def int8():
        for w, s in w8:
            torch._weight_int8pack_mm(xs[w.shape[1]].bfloat16(), w, s)

    def onednn():
        for w in w32:
            torch.ops.mkldnn._linear_pointwise(xs[w.shape[1]], w, None, "none", [], "")

    fns = {k: linear(ws, dt) for k, (ws, dt) in variants.items()}
    fns["float32 (out, in): oneDNN linear (Float32Linear)"] = onednn
    if rows == 1:
        fns["int8 weight-only (bf16 activations)"] = int8
    best = {k: float("inf") for k in fns}
    with torch.no_grad():
        for _ in range(repeats):
            for k, f in fns.items():
                t = time.perf_counter()
                f()
                best[k] = min(best[k], time.perf_counter() - t)
    return {"ms": {k: v * 1e3 for k, v in best.items()},
            "bytes": {"float32": weight_bytes(trained), "float16 / bfloat16": weight_bytes(trained) // 2,
                      "int8": weight_bytes(trained) // 4}}


def agreement(fp32: nn.Module, fp16: nn.Module, a) -> dict:
    """Feed both models float32's greedy continuation token by token; compare logits and choices."""
    g = torch.Generator().manual_seed(2)
    rows = []
    with torch.no_grad():
        for _ in range(a.prompts):
            prompt = torch.randint(0, 50257, (1, PROMPT_LEN), generator=g)
            c32, c16 = fp32.new_cache(1, PROMPT_LEN + a.new), fp16.new_cache(1, PROMPT_LEN + a.new)
            l32 = fp32(prompt, past_kv=c32, use_cache=True, last_only=True)[0][:, -1]
            l16 = fp16(prompt, past_kv=c16, use_cache=True, last_only=True)[0][:, -1]
            first_diff, worst = None, 0.0
            for step in range(a.new):
                worst = max(worst, (l32 - l16).abs().max().item())
                tok = l32.argmax(-1)
                if first_diff is None and l16.argmax(-1).item() != tok.item():
                    first_diff = step
                if step + 1 < a.new:
                    l32 = fp32(tok[:, None], past_kv=c32, use_cache=True)[0][:, -1]
                    l16 = fp16(tok[:, None], past_kv=c16, use_cache=True)[0][:, -1]
            rows.append({"first_different_token": first_diff, "max_abs_logit_diff": worst,
                         "logit_std": l32.std().item()})
    equal = sum(r["first_different_token"] is None for r in rows)
    return {"prompts": a.prompts, "new_tokens": a.new, "greedy_equal_prompts": equal,
            "max_abs_logit_diff": max(r["max_abs_logit_diff"] for r in rows), "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="speed,kernels", help="comma-separated: speed, kernels, agreement")
    p.add_argument("--new", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--prompts", type=int, default=20, help="agreement: random prompts")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for both programs (default: every CPU, torch's default)")
    p.add_argument("--kernel-rows", type=int, nargs="+", default=[1, 4], help="kernels: rows per product")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    parts = a.parts.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="gpt2-bench-"))
    hf, fp32, fp16, trained, import_seconds, hf_version = build(tmp)
    # after genlab.load, whose automatic thread choice reads the load average (a previous
    # benchmark still counts in it): the same threads for both programs, whatever the load
    from genlab.engine.threads import configure_threads

    configure_threads(a.threads)
    res: dict = {"threads": torch.get_num_threads(), "load_avg_before": os.getloadavg(), "new_tokens": a.new,
                 "repeats": a.repeats, "import_seconds": import_seconds, "transformers_version": hf_version,
                 "torch": torch.__version__}
    if "kernels" in parts:  # at 1 thread and at the run's thread count: how each kernel scales
        threads = torch.get_num_threads()
        res["kernels"] = {}
        for t in sorted({1, threads}):
            torch.set_num_threads(t)
            for rows in a.kernel_rows:
                res["kernels"][f"{t} thread{'s' if t > 1 else ''}, {rows} row{'s' if rows > 1 else ''}"] = \
                    kernels(trained, rows)
        torch.set_num_threads(threads)
    if "speed" in parts:
        res["speed"] = speed(hf, fp32, fp16, trained, a)
    if "agreement" in parts:
        res["agreement"] = agreement(fp32, fp16, a)
    res["load_avg_after"] = os.getloadavg()
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    sys.exit(main())
