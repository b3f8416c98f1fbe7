"""Linear layers laid out for decoding: `load(run, weights="float32" | "float16")`, `--weights`.

Decoding one sequence at a time is bound by memory bandwidth: every new token reads every
weight matrix once (0.5 GB for GPT-2 small in float32) to multiply it with one vector. How
fast the bytes stream depends on the layout and the dtype, so a language model loaded for
sampling, evaluation or serving gets its nn.Linear layers replaced (in place; inference only):

- "float32" (the default): the weight unchanged; on CPU, weights of ONEDNN_MIN_WEIGHT elements
  or more are multiplied through oneDNN's linear kernel (`torch.ops.mkldnn._linear_pointwise`,
  the kernel torch.compile's CPU backend calls). F.linear goes to MKL, whose matrix-vector
  products used one core here: all products of one GPT-2-small step took 17.9 ms through
  oneDNN against 35.5 ms through F.linear (26.1 with the weight transposed) at one row, 26.5
  against 59.6 ms at four rows, 2 threads (BENCHMARKS.md; at 1 thread the transposed layout
  was 13% faster than oneDNN: not worth a second copy of the weights). The same products,
  summed in another order: equal to float rounding. Smaller weights, other devices and
  PyTorch builds without oneDNN use F.linear.
- "float16": the weight stored in float16, (out, in): half the bytes. Up to FLOAT16_ROWS rows
  at once (decoding one sequence, a server's small batches) go through PyTorch's float16
  matrix-vector kernel, which converts to float32 and accumulates in float32 as it reads. More
  rows (a prompt, larger batches) have no fast float16 kernel on CPUs without avx512_fp16: they
  are multiplied in float32 (F.linear) by the weight converted for the call (as exact as
  float32 weights rounded to float16).

Everything else (embeddings, LayerNorms, attention, the KV cache, every layer's inputs and
outputs) stays float32. bfloat16 halves the bytes too, but a bfloat16 linear layer goes to
oneDNN, which was half as fast at one row as the float16 kernel, and keeps 3 bits less of
mantissa; int8 weight-only (`torch._weight_int8pack_mm`) needs bfloat16 activations and outputs
and was slower than float16 at one row (BENCHMARKS.md).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

WEIGHT_DTYPES = ("float32", "float16")
ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
# oneDNN costs ~20 us more per call than F.linear here: a win for weights streamed from memory,
# a loss for small ones that stay in cache (a 128-wide GPT's cached decoding step took 1.2 ms
# through it, 0.73 ms through F.linear)
ONEDNN_MIN_WEIGHT = 1 << 18  # elements (1 MiB of float32)
FLOAT16_ROWS = 4  # the float16 kernel beat float32 up to 4 rows here, converting the weight from 6


def _keep(layer: nn.Module, name: str, weight: torch.Tensor, tied: bool) -> None:
    """A weight tied to another module's (an embedding) becomes a buffer: the copy is a layout,
    not a parameter more (the model's parameter count stays the one it was trained with)."""
    if tied:
        layer.register_buffer(name, weight, persistent=False)
    else:
        setattr(layer, name, nn.Parameter(weight, requires_grad=False))


class Float32Linear(nn.Module):
    """An nn.Linear multiplied through oneDNN on CPU when its weight is large (inference only);
    the same weight tensor, so `tied` (Float16Linear's signature) changes nothing."""

    def __init__(self, linear: nn.Linear, tied: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias  # shared, not copied: a tied weight stays tied
        self.onednn = ONEDNN and linear.weight.numel() >= ONEDNN_MIN_WEIGHT

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.onednn and x.device.type == "cpu" and x.dtype == self.weight.dtype == torch.float32:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Float16Linear(nn.Module):
    """An nn.Linear whose weight is stored in float16 (inference only); input and output dtypes
    are the caller's."""

    def __init__(self, linear: nn.Linear, tied: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        _keep(self, "weight", linear.weight.detach().half(), tied)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() <= FLOAT16_ROWS * x.shape[-1]:  # a few rows: the float16 matrix-vector kernel
            y = F.linear(x.to(torch.float16), self.weight).to(x.dtype)
            return y if self.bias is None else y + self.bias
        return F.linear(x, self.weight.to(x.dtype), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def check_weights_dtype(dtype: str) -> None:
    if dtype not in WEIGHT_DTYPES:
        raise ConfigError(f"weights must be one of {', '.join(WEIGHT_DTYPES)}, got {dtype!r}")


def lay_out_for_decoding(model: nn.Module, dtype: str = "float32") -> nn.Module:
    """Replace the model's nn.Linear layers, in place, by Float32Linear ("float32") or
    Float16Linear ("float16"); returns the model, now for inference only. A float16 weight tied
    to an embedding is its own copy (the embedding keeps its float32 table), kept as a buffer."""
    check_weights_dtype(dtype)
    layer = Float32Linear if dtype == "float32" else Float16Linear
    others = {id(p) for m in model.modules() if not isinstance(m, nn.Linear) for p in m.parameters(recurse=False)}
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                setattr(parent, name, layer(child, tied=id(child.weight) in others))
    return model.requires_grad_(False)
