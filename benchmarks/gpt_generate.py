"""Generation speed: genlab's KV-cache generation vs transformers' `generate`, same weights.

    python benchmarks/gpt_generate.py [--new 256] [--repeats 3] [--threads N] [--out results.json]

A random GPT-2-small-shaped model (12 layers, 12 heads, 768 dims, 50,257 tokens, 1,024
positions) is built with transformers (no download), saved with save_pretrained, and imported
through `genlab import gpt2` (genlab.api.import_gpt2). Both decode greedily at batch 1 from
the same 16-token prompt for exactly `--new` tokens (end-of-text disabled), in the same
process, alternating runs; the median tokens/s of each is reported, plus genlab's no-cache
path (the whole window recomputed each step) once. The token sequences are compared.
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


def synthetic_gpt2_tokenizer(d: Path) -> None:
    """A 50,257-token byte-level vocabulary: 256 bytes, 50,000 two-byte merges, <|endoftext|>."""
    from genlab.tokenizers import bytes_to_unicode

    sym = [bytes_to_unicode()[b] for b in range(256)]
    merges = [(sym[i % 256], sym[i // 256]) for i in range(50000)]
    vocab = {s: i for i, s in enumerate(sym + [a + b for a, b in merges])}
    vocab["<|endoftext|>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (d / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--new", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    import transformers

    import genlab
    from genlab.sampling.generate import generate

    tmp = Path(tempfile.mkdtemp(prefix="gpt2-bench-"))
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    hf.save_pretrained(tmp / "hf")
    synthetic_gpt2_tokenizer(tmp / "hf")
    t0 = time.time()
    run_dir = genlab.api.import_gpt2(tmp / "hf", tmp / "run")
    import_seconds = time.time() - t0
    model = genlab.load(run_dir, device="cpu").recipe.modules["model"].eval()
    prompt = torch.randint(0, 50257, (1, 16), generator=torch.Generator().manual_seed(1))

    def run_hf() -> tuple[float, list[int]]:
        t = time.perf_counter()
        with torch.no_grad():
            out = hf.generate(prompt, max_new_tokens=a.new, min_new_tokens=a.new, do_sample=False)
        return time.perf_counter() - t, out[0, 16:].tolist()

    def run_genlab(use_cache: bool = True) -> tuple[float, list[int]]:
        t = time.perf_counter()
        g = generate(model, prompt.tolist(), a.new, temperature=0, use_cache=use_cache)[0]
        return time.perf_counter() - t, g.tokens

    run_hf(), run_genlab()  # warm-up (allocator, oneDNN/MKL kernels)
    times: dict[str, list[float]] = {"transformers": [], "genlab": []}
    tokens = {}
    for _ in range(a.repeats):
        for name, fn in (("transformers", run_hf), ("genlab", run_genlab)):
            s, toks = fn()
            times[name].append(s)
            tokens[name] = toks
    s_nc, toks_nc = run_genlab(use_cache=False)
    rate = {k: a.new / statistics.median(v) for k, v in times.items()}
    same = next((i for i, (x, y) in enumerate(zip(tokens["genlab"], tokens["transformers"])) if x != y), a.new)
    res = {
        "threads": torch.get_num_threads(), "load_avg": os.getloadavg(), "new_tokens": a.new,
        "import_seconds": import_seconds,
        "seconds": times, "tokens_per_s": rate, "genlab_no_cache_tokens_per_s": a.new / s_nc,
        "genlab_vs_transformers": rate["genlab"] / rate["transformers"],
        "cache_vs_no_cache": rate["genlab"] / (a.new / s_nc),
        "tokens_equal_to_transformers": same, "no_cache_tokens_equal": toks_nc == tokens["genlab"],
        "transformers_version": transformers.__version__, "torch": torch.__version__,
    }
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    sys.exit(main())
