"""An LSTM language model: token embedding -> multi-layer LSTM -> linear head over the vocabulary.

    logits, state = model(idx)                  # idx (B, T) -> logits (B, T, vocab)
    logits, state = model(idx_next, state)      # continue from a carried (h, c) state

state is the LSTM's (h, c), each (n_layers, B, hidden). Dropout sits between LSTM layers
(nn.LSTM's own) and before the head, never after it (one of the reference book's bugs is a
dropout on the output logits).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

State = tuple[torch.Tensor, torch.Tensor]


@dataclass
class LSTMConfig:
    vocab_size: int
    n_embd: int = 128
    hidden: int = 128
    n_layers: int = 3
    dropout: float = 0.2


class LSTMLanguageModel(nn.Module):
    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.lstm = nn.LSTM(config.n_embd, config.hidden, config.n_layers, batch_first=True,
                            dropout=config.dropout if config.n_layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)
        # Forget-gate bias 1 (Jozefowicz et al. 2015): remember by default early in training.
        # PyTorch has two bias vectors per layer (b_ih, b_hh); gates are ordered i, f, g, o.
        h = config.hidden
        for name, p in self.lstm.named_parameters():
            if name.startswith("bias_ih"):
                with torch.no_grad():
                    p[h:2 * h].fill_(1.0)

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        c = self.config
        z = torch.zeros(c.n_layers, batch, c.hidden, device=device or self.head.weight.device)
        return z, z.clone()

    def forward(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        out, state = self.lstm(self.embed(idx), state)
        return self.head(self.drop(out)), state


class CarriedState(nn.Module):
    """The LSTM state carried from one training window to the next, one row per stream.

    Buffers, not parameters: the trainer checkpoints them with the weights, so a resumed run
    continues every stream from exactly where it stopped.
    """

    def __init__(self, n_layers: int, n_streams: int, hidden: int):
        super().__init__()
        self.register_buffer("h", torch.zeros(n_layers, n_streams, hidden))
        self.register_buffer("c", torch.zeros(n_layers, n_streams, hidden))
