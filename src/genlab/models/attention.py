"""Scaled dot-product attention for the Transformer models (gpt.py, seq2seq.py).

One call, F.scaled_dot_product_attention, except under CPU bfloat16 autocast: there the
attention runs in float32. PyTorch's CPU flash-attention backward took 14.3 ms per step in
bfloat16 against 3.9 ms in float32 for the nanoGPT CPU shapes (benchmarks/gpt_step_profile.py
--profile --set bf16=true), more than bfloat16 matrix products save; the linear layers around
it keep autocast's bfloat16.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
           is_causal: bool = False, dropout_p: float = 0.0) -> torch.Tensor:
    """q (B, H, Tq, D), k and v (B, H, Tk, D) -> (B, H, Tq, D); mask: True = may attend."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask,
                                                  is_causal=is_causal, dropout_p=dropout_p)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=dropout_p)
