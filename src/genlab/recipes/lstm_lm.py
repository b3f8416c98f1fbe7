"""lstm-lm: an LSTM language model on characters, words or BPE tokens.

Training is truncated backpropagation through time over *streams*: the training tokens are
cut into `batch_size` contiguous regions, row s of every batch reads region s, and batch
i+1 continues each region exactly where batch i stopped, so the LSTM state computed on one
window is the right starting state for the next (it is carried over, detached). The reference
book carries the state across shuffled, unrelated windows, which feeds the model a state
from the wrong text; here a state only ever continues its own stream and is reset to zero
when the streams wrap around to the start of the text (a new pass, with new window cuts).

The carried state lives in a buffer module (modules["state"]), so checkpoints hold it and a
resumed run continues bit-for-bit like an uninterrupted one. Under DDP every rank owns a
shard of the streams and the full state is all-gathered after each step, so every rank (and
the checkpoint written by rank 0) holds the state of all streams.

Evaluation: validation loss, perplexity, bits per character (total nats / characters / ln 2,
so models with different tokenizers compare), and a novelty report on ~2,000 generated
characters (longest span copied from the training text, share of word/char 8-grams found
in it; see genlab.metrics.text).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.config import TrainConfig
from ..errors import ConfigError, DataError, RunDirError
from ..metrics.text import novelty_report
from ..models.lstm import CarriedState, LSTMConfig, LSTMLanguageModel
from ..sampling.recurrent import RecurrentDecoder
from ..tokenizers import Tokenizer, build_tokenizer, load_tokenizer
from .lm_base import LanguageModelRecipe, LMSample

TOKENIZERS = ("char", "word", "bpe")


@dataclass
class LSTMLMConfig(TrainConfig):
    tokenizer: str = "char"      # char | word | bpe
    vocab_size: int = 2000       # word: most frequent words (0 = all); bpe: merges target; char: ignored
    n_embd: int = 64             # token-embedding width
    hidden: int = 256            # LSTM hidden size per layer
    n_layers: int = 2            # stacked LSTM layers
    dropout: float = 0.1         # dropout between LSTM layers and before the output layer
    seq_len: int = 64            # truncated-BPTT window, in tokens
    batch_size: int = 32         # parallel streams
    lr: float = 3e-3
    grad_clip: float = 1.0
    max_steps: int = 500
    eval_every: int = 250
    save_every: int = 250
    early_stop_metric: str = "val_loss"   # keeps the best checkpoint (patience 0: never stops)
    eval_tokens: int = 100_000   # validation tokens per evaluation (0 = the whole split)
    eval_streams: int = 16       # parallel streams the validation split is read in
    novelty_chars: int = 2000    # generated characters for the novelty report (0 = skip it)
    # evaluations during training: a fifth of the validation tokens, no novelty sample
    periodic_eval = {"eval_tokens": 20_000, "novelty_chars": 0}

    def check(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(f"invalid config: tokenizer must be one of {', '.join(TOKENIZERS)}, "
                              f"got {self.tokenizer!r}")
        if self.tokenizer == "bpe" and self.vocab_size < 257:
            raise ConfigError("invalid config: bpe needs vocab_size >= 257")
        if self.vocab_size < 0 or self.eval_tokens < 0 or self.novelty_chars < 0:
            raise ConfigError("invalid config: vocab_size, eval_tokens and novelty_chars must be >= 0")
        if min(self.n_embd, self.hidden, self.n_layers, self.seq_len, self.eval_streams) < 1:
            raise ConfigError("invalid config: n_embd, hidden, n_layers, seq_len, eval_streams must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"invalid config: dropout must lie in [0, 1), got {self.dropout}")


@dataclass
class LSTMSample(LMSample):
    n: int = 3                   # samples per call


class LSTMRecipe(LanguageModelRecipe):
    name = "lstm-lm"
    Config = LSTMLMConfig
    Sample = LSTMSample
    presets = {
        # The book's word model (Anna Karenina): embedding 128, 3 LSTM layers of 128, dropout 0.2,
        # sequences of 100 words, batches of 32, the whole vocabulary. Its windows overlap (stride
        # 1), ours do not, so an epoch has ~100x fewer updates: a larger lr than the book's 1e-4.
        "book": {"tokenizer": "word", "vocab_size": 0, "n_embd": 128, "hidden": 128, "n_layers": 3,
                 "dropout": 0.2, "seq_len": 100, "batch_size": 32, "lr": 2e-3, "max_steps": 7000,
                 "eval_every": 500, "save_every": 500},
        # The char-RNN notebook: 2 layers of 512, dropout 0.5, sequences of 100, batches of 128,
        # Adam 1e-3, gradient clipping 5 (one-hot inputs there, an embedding of 128 here).
        "char": {"tokenizer": "char", "n_embd": 128, "hidden": 512, "n_layers": 2, "dropout": 0.5,
                 "seq_len": 100, "batch_size": 128, "lr": 1e-3, "grad_clip": 5.0, "max_steps": 3000,
                 "eval_every": 250, "save_every": 250},
    }

    # -- artifacts -------------------------------------------------------------------------
    def load_artifacts(self, run_dir: Path) -> None:
        tok = load_tokenizer(run_dir)
        if tok.kind != self.config.tokenizer:
            raise RunDirError(f"{run_dir}: tokenizer.json is a {tok.kind} tokenizer but the config says "
                              f"tokenizer={self.config.tokenizer}")
        self.tokenizer = tok

    # -- data ---------------------------------------------------------------------------------
    def fit_tokenizer(self, train_text: str) -> Tokenizer:
        return build_tokenizer(self.config.tokenizer, train_text, vocab_size=self.config.vocab_size)

    def tokenizer_settings(self) -> dict:
        return {"kind": self.config.tokenizer, "vocab": self.config.vocab_size}

    def check_corpus(self) -> None:
        c = self.config
        self.corpus.stream_layout("train", c.seq_len, c.batch_size)  # DataError when too small
        n_val = len(self.corpus.val)
        if n_val < 2 * c.seq_len + 1:
            raise DataError(f"{c.data or 'corpus'}: the validation part (last 10%) has {n_val} tokens, need at "
                            f"least {2 * c.seq_len + 1} (more text or a smaller seq_len)")

    # -- model -----------------------------------------------------------------------------------
    def build_modules(self) -> dict[str, nn.Module]:
        c = self.config
        if self.tokenizer is None:
            raise RunDirError("lstm-lm needs its tokenizer (tokenizer.json) before building the model")
        torch.manual_seed(c.seed)
        lm = LSTMLanguageModel(LSTMConfig(self.tokenizer.vocab_size, c.n_embd, c.hidden, c.n_layers, c.dropout))
        return {"lm": lm, "state": CarriedState(c.n_layers, c.batch_size, c.hidden)}

    def model_width(self) -> int:
        return self.config.n_embd

    def language_model(self) -> nn.Module:
        return RecurrentDecoder(self.modules["lm"])  # its (h, c) state serves as the cache

    @property
    def _rows(self) -> torch.Tensor:
        """Indices of the streams this rank trains (all of them without DDP)."""
        return self.shard(torch.arange(self.config.batch_size))

    def batch(self, index: int) -> dict:
        c = self.config
        x, y, reset = self.corpus.stream_batch("train", index, c.seq_len, c.batch_size, seed=c.seed)
        return {"x": self.shard(x).to(self.device), "y": self.shard(y).to(self.device), "reset": reset}

    def training_step(self, batch: dict, step: int) -> dict[str, float]:
        st = self.modules["state"]
        rows = self._rows.to(self.device)
        if batch["reset"]:  # first window of a pass: streams start fresh
            state = None
        else:
            state = (st.h[:, rows].contiguous(), st.c[:, rows].contiguous())
        with self.autocast():
            logits, (h, c) = self.train_modules["lm"](batch["x"], state)
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch["y"].flatten())
        self.optimize("model", loss)
        self._store_state(h.detach().float(), c.detach().float(), rows)
        return {"loss": loss.item()}

    @torch.no_grad()
    def _store_state(self, h: torch.Tensor, c: torch.Tensor, rows: torch.Tensor) -> None:
        st = self.modules["state"]
        if self.dist.enabled:  # every rank keeps every stream's state (rank 0 checkpoints it)
            import torch.distributed as dist

            world = self.dist.world_size
            for local, full in ((h, st.h), (c, st.c)):
                parts = [torch.empty_like(local) for _ in range(world)]
                dist.all_gather(parts, local.contiguous())
                for r, part in enumerate(parts):
                    full[:, r::world] = part
        else:
            st.h[:, rows] = h
            st.c[:, rows] = c

    # -- evaluation -----------------------------------------------------------------------------
    def stream_nll(self, split: str = "val", max_tokens: int = 0) -> tuple[float, int]:
        """(total nats, tokens) of `split` read as consecutive windows with the state carried."""
        c = self.config
        lm = self.modules["lm"]
        data = self.corpus.split(split)
        n = max(1, min(c.eval_streams, (len(data) - c.seq_len) // c.seq_len))
        _, windows = self.corpus.stream_layout(split, c.seq_len, n)
        if max_tokens:
            windows = min(windows, max(1, math.ceil(max_tokens / (n * c.seq_len))))
        nats, count, state = 0.0, 0, None
        for w in range(windows):  # pass 0: no offset, window w+1 continues window w exactly
            x, y, _ = self.corpus.stream_batch(split, w, c.seq_len, n)
            with self.autocast():
                logits, state = lm(x.to(self.device), state)
            nats += F.cross_entropy(logits.float().flatten(0, 1), y.to(self.device).flatten(), reduction="sum").item()
            count += y.numel()
        return nats, count

    def validation_nll(self) -> tuple[float, int]:
        return self.stream_nll("val", self.config.eval_tokens)

    def novelty_texts(self) -> list[str]:
        return [self.novelty_text(self.config.novelty_chars)] if self.config.novelty_chars else []

    def novelty_text(self, chars: int = 2000, seed: int = 0) -> str:
        """~`chars` generated characters (default sampling options) for the novelty report."""
        self.load_data_once()
        per_token = self.corpus.chars_per_token("train")
        tokens = math.ceil(chars / max(per_token, 1e-3) * 1.2) + 8
        return self.generate(LSTMSample(n=1, seed=seed, max_new_tokens=tokens)).texts[0][:chars]

    def novelty(self, chars: int = 2000, seed: int = 0) -> dict:
        """novelty_report of ~`chars` generated characters against the training text."""
        return novelty_report(self.novelty_text(chars, seed), self.train_text)
