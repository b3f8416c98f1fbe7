"""How fast can one training iteration of nanoGPT's CPU configuration be on this machine?

Times every matrix multiplication of one forward + backward pass of the model
(4 layers, 128 dims, 4 heads, block 64, batch 12: 768 tokens, vocabulary 65) as plain
torch.matmul calls with the same shapes, in float32 and in bfloat16, and sums them: the
"GEMM floor" of an iteration. No implementation that does this arithmetic in these dtypes can
be faster than the floor; the gap between a program's iteration time and the floor is
everything else (attention softmax, LayerNorm, GELU, the optimizer, Python).

    python benchmarks/gpt_gemm_floor.py [--threads 2] [--repeats 200]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

TOKENS, D, LAYERS, HEADS, BLOCK, VOCAB = 12 * 64, 128, 4, 4, 64, 65


def gemm_shapes() -> list[tuple[int, int, int, int]]:
    """(count, M, K, N) of every matmul in one forward + backward: y = x W^T has M x K @ K x N,
    its backward one matmul for the input gradient and one for the weight gradient."""
    linear = [(D, 3 * D), (D, D), (D, 4 * D), (4 * D, D)]            # c_attn, attn.c_proj, c_fc, mlp.c_proj
    shapes = []
    for k, n in linear:
        shapes += [(LAYERS, TOKENS, k, n), (LAYERS, TOKENS, n, k), (LAYERS, n, TOKENS, k)]
    shapes += [(1, TOKENS, D, VOCAB), (1, TOKENS, VOCAB, D), (1, VOCAB, TOKENS, D)]   # lm_head
    return shapes


def attention_shapes() -> list[tuple[int, int, int, int, int]]:
    """(count, batch, M, K, N) batched matmuls of attention: scores q k^T and the weighted sum p v,
    forward and the two gradients of each (full T x T blocks, as a fused kernel computes them)."""
    b, hd = 12 * HEADS, D // HEADS
    per_layer = [(b, BLOCK, hd, BLOCK), (b, BLOCK, BLOCK, hd), (b, BLOCK, hd, BLOCK),   # q k^T: fwd, dq, dk
                 (b, BLOCK, BLOCK, hd), (b, BLOCK, hd, BLOCK), (b, BLOCK, BLOCK, hd)]   # p v: fwd, dp, dv
    return [(LAYERS, *s) for s in per_layer]


def time_op(fn, repeats: int) -> float:
    for _ in range(10):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def floor_ms(dtype: torch.dtype, repeats: int) -> tuple[float, float]:
    total, flops = 0.0, 0.0
    for count, m, k, n in gemm_shapes():
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        total += count * time_op(lambda: torch.matmul(a, b), repeats)
        flops += count * 2 * m * k * n
    for count, bb, m, k, n in attention_shapes():
        a, b = torch.randn(bb, m, k, dtype=dtype), torch.randn(bb, k, n, dtype=dtype)
        total += count * time_op(lambda: torch.bmm(a, b), repeats)
        flops += count * 2 * bb * m * k * n
    return total * 1e3, flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {"threads": args.threads, "torch": torch.__version__}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        ms, flops = floor_ms(dtype, args.repeats)
        out[name] = {"gemm_floor_ms": round(ms, 2), "gflop": round(flops / 1e9, 3),
                     "gflop_per_s": round(flops / ms / 1e6, 1), "floor_tokens_per_s": round(TOKENS / ms * 1e3)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
