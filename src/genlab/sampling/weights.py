"""Weights kept in float16 for decoding: `load(run, weights="float16")`, `--weights float16`.

Decoding one sequence at a time is bound by memory bandwidth: every new token reads every
weight matrix once (0.5 GB for GPT-2 small in float32) to multiply it with one vector.
Stored in float16, the matrices are half the bytes, and PyTorch's CPU kernel for a float16
matrix times one vector converts to float32 and accumulates in float32 as it reads.

Why float16 and not bfloat16 or int8 (measured on this project's avx512_bf16 CPU,
BENCHMARKS.md): both float16 and bfloat16 halve the bytes, but a bfloat16 linear layer goes
to oneDNN, which is twice as slow at one row as the float16 vector kernel, and float16 keeps 3
more bits of mantissa (its range, ±65504, holds a language model's weights and activations).
int8 weight-only (`torch._weight_int8pack_mm`) needs bfloat16 activations and outputs and was
slower than float16 at one row.

Only the linear layers change (embeddings, LayerNorms, attention and the KV cache stay
float32, and so do every layer's inputs and outputs). More than one row at once (a prompt, a
batch of sequences) has no fast float16 kernel on such CPUs: those rows are multiplied in
float32 by the weight converted for the call (as exact as float32 weights rounded to float16).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

WEIGHT_DTYPES = ("float32", "float16")


class Float16Linear(nn.Module):
    """An nn.Linear whose weight is stored in float16 (inference only); input and output dtypes
    are the caller's."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = nn.Parameter(linear.weight.detach().half(), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == x.shape[-1]:  # one row: the float16 matrix-vector kernel
            y = F.linear(x.to(torch.float16), self.weight).to(x.dtype)
            return y if self.bias is None else y + self.bias
        return F.linear(x, self.weight.to(x.dtype), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def check_weights_dtype(dtype: str) -> None:
    if dtype not in WEIGHT_DTYPES:
        raise ConfigError(f"weights must be one of {', '.join(WEIGHT_DTYPES)}, got {dtype!r}")


def keep_weights_in(model: nn.Module, dtype: str) -> nn.Module:
    """Replace the model's nn.Linear layers, in place, by ones whose weights are stored in
    `dtype` ("float32" changes nothing); returns the model, now for inference only. A weight
    tied to an embedding gets its own float16 copy (the embedding stays float32)."""
    check_weights_dtype(dtype)
    if dtype == "float32":
        return model
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                setattr(parent, name, Float16Linear(child))
    return model.requires_grad_(False)
