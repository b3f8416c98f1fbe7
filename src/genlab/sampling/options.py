"""The options every text-like recipe samples with, and what a server needs to decode a model.

A recipe's sampling-options dataclass inherits `SamplingOptions` (adding its own `n`, `seed`
and defaults) instead of declaring these fields again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import nn

from ..errors import ConfigError
from .logits import check_sampling_options

if TYPE_CHECKING:
    from ..tokenizers.base import Tokenizer


@dataclass
class SamplingOptions:
    prompt: str = ""               # text to continue; empty: the model's start token (see LMParts.start_ids)
    max_new_tokens: int = 300      # tokens generated per sample at most
    temperature: float = 0.8       # 0 = greedy (argmax)
    top_k: int = 0                 # keep only the k most likely tokens (0 = off)
    top_p: float = 1.0             # keep the smallest set of tokens whose probability reaches p (1 = off)
    stop: list[str] = field(default_factory=list)  # stop strings, cut from the text; \n and \t are understood
    repetition_penalty: float = 1.0  # CTRL's penalty on tokens already in the context (1 = off, 1.2 typical)
    use_cache: bool = True         # reuse keys/values (or a recurrent state) instead of recomputing

    def stop_strings(self) -> list[str]:
        """The stop strings with `\\n` and `\\t` read as the characters (`--set stop='\\n\\n'`
        arrives with literal backslashes)."""
        return [s.replace("\\n", "\n").replace("\\t", "\t") for s in self.stop]

    def check_sampling(self) -> None:
        """Raise a ConfigError naming the first invalid option."""
        check_sampling_options(self.temperature, self.top_k, self.top_p, self.repetition_penalty)
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ConfigError(f"stop strings must be non-empty strings, got {self.stop!r}")


@dataclass(frozen=True)
class LMParts:
    """Everything needed to decode a language model, with no recipe in sight (what
    `genlab serve` uses): `model` follows the forward contract of sampling/generate.py."""

    model: nn.Module
    tokenizer: "Tokenizer"
    eos_id: int | None = None          # generation ends at this token (not part of the text)
    block_size: int | None = None      # context limit in tokens; None: unlimited (recurrent models)
    start_ids: tuple[int, ...] = ()    # what an empty prompt starts from
