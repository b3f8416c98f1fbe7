"""Decoding for autoregressive models: logit processing, stop rules, KV-cache driver."""
from .logits import SamplingOptions, check_sampling_options, next_token

__all__ = ["SamplingOptions", "check_sampling_options", "next_token"]
