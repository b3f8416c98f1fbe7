"""What a server or any other decoding loop needs from a language model, in one small record."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass
class LMParts:
    model: nn.Module        # follows generate.py's forward contract (past_kv / use_cache)
    tokenizer: Any          # genlab.tokenizers.Tokenizer: encode / decode
    eos_id: int | None
    block_size: int | None  # context limit in tokens (None: unlimited)
