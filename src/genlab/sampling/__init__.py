"""Decoding for autoregressive models: logit processing, stop rules, KV-cache driver, text in/out."""
from .generate import Generation, generate, stream
from .logits import check_sampling_options, next_token
from .options import LMParts, SamplingOptions
from .recurrent import RecurrentDecoder
from .text import complete, stream_text

__all__ = ["Generation", "LMParts", "RecurrentDecoder", "SamplingOptions", "check_sampling_options", "complete",
           "generate", "next_token", "stream", "stream_text"]
