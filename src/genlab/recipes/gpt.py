"""gpt: a GPT (decoder-only Transformer) language model on any text.

    genlab train gpt                                   # embedded corpus, character tokens, a few minutes
    genlab train gpt --data book.txt --preset book     # the book's word-level model (3 layers, 256 dims)
    genlab sample runs/gpt --set prompt="The " --set temperature=0.8 --set top_k=40
    genlab import gpt2 ~/gpt2 --out runs/gpt2          # published GPT-2 weights, then sample/eval them
    genlab train gpt --resume --out runs/gpt2 --data my.txt --set max_steps=200 --set lr=1e-4   # fine-tune them

Training follows nanoGPT's recipe: random windows of `block_size` tokens, next-token
cross-entropy, AdamW with weight decay on matrices only (not biases, LayerNorm gains),
linear warmup then cosine decay, gradient clipping at 1, optional bf16 autocast. Config keys use
nanoGPT's names (n_layer, n_head, n_embd, block_size, dropout, bias).

Evaluation: validation loss, perplexity and bits per character on the last 10% of the
text, and a novelty report of generated samples (longest span copied from the training
text, share of generated 8-grams found in it) — low loss with high copying is memorisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..engine.config import TrainConfig
from ..errors import ConfigError, RunDirError
from ..models.gpt import GPT, GPTConfig, next_token_loss
from ..tokenizers import Tokenizer, build_tokenizer
from .lm_base import LanguageModelRecipe, LMSample, NextTokenStep

TOKENIZERS = ("char", "word", "bpe", "gpt2")


@dataclass
class GPTTrainConfig(TrainConfig):
    tokenizer: str = "char"        # char | word | bpe | gpt2
    tokenizer_vocab: int = 2000    # word / bpe: vocabulary size to fit on the training text
    tokenizer_files: str = ""      # gpt2: folder holding GPT-2's vocab.json and merges.txt
    vocab_size: int = 0            # model vocabulary; 0 = the tokenizer's (imports may pad it)
    block_size: int = 128          # context length in tokens
    n_layer: int = 4               # Transformer blocks
    n_head: int = 4                # attention heads per block (must divide n_embd)
    n_embd: int = 128              # model width (embedding and residual stream)
    dropout: float = 0.0           # dropout on attention, residual and embeddings (0 = off)
    bias: bool = True              # biases in linear layers and LayerNorms (GPT-2: true)
    tie_weights: bool = True       # output layer shares the token-embedding matrix
    layer_norm_eps: float = 1e-5   # LayerNorm epsilon
    activation: str = "gelu_tanh"  # gelu_tanh (GPT-2's) | gelu (exact; nanoGPT's, faster on CPU)
    weight_decay: float = 0.1      # AdamW, on 2-D parameters only
    beta1: float = 0.9             # AdamW beta1
    beta2: float = 0.99            # AdamW beta2
    compile: bool = False          # torch.compile the model for training (measured: no gain on CPU)
    threads: int = 0               # CPU intra-op threads of this process (0 = automatic: engine/threads.py)
    eval_tokens: int = 65536       # validation tokens scored per evaluation (0 = the whole split)
    novelty_samples: int = 4       # samples generated per evaluation for the novelty report (0 = off)
    novelty_tokens: int = 200      # tokens per novelty sample
    # trainer defaults (nanoGPT's CPU settings, a bit longer context)
    max_steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    bf16: bool = False             # autocast: 1.45x faster steps on a 2-core AMD EPYC, slower on an Intel Xeon without AMX
    eval_every: int = 250
    save_every: int = 500
    early_stop_metric: str = "val_loss"
    bounds = {"layer_norm_eps": "(0, 1)"}
    path_keys = ("data", "tokenizer_files")
    resume_keys = TrainConfig.resume_keys + ("eval_tokens", "novelty_samples", "novelty_tokens", "compile")
    # evaluations during training: a quarter of the validation tokens, no novelty samples
    periodic_eval = {"eval_tokens": 16384, "novelty_samples": 0}

    def check(self) -> None:
        problems = [
            (self.tokenizer in TOKENIZERS, f"tokenizer must be one of {', '.join(TOKENIZERS)}"),
            (self.n_layer >= 1 and self.n_head >= 1 and self.n_embd >= 1, "n_layer, n_head, n_embd must be >= 1"),
            (self.n_embd % max(self.n_head, 1) == 0, f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"),
            (self.block_size >= 2, "block_size must be >= 2"),
            (self.activation in ("gelu_tanh", "gelu"), "activation must be gelu_tanh or gelu"),
            (0 <= self.dropout < 1, "dropout must lie in [0, 1)"),
            (self.vocab_size >= 0, "vocab_size must be >= 0 (0 = the tokenizer's)"),
            (self.tokenizer_vocab >= 2, "tokenizer_vocab must be >= 2"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1 and beta2 must lie in [0, 1)"),
            (self.threads >= 0, "threads must be >= 0"),
            (self.eval_tokens >= 0 and self.novelty_samples >= 0 and self.novelty_tokens >= 1,
             "eval_tokens and novelty_samples must be >= 0, novelty_tokens >= 1"),
        ]
        for ok, message in problems:
            if not ok:
                raise ConfigError(f"invalid config: {message}")


@dataclass
class GPTSample(LMSample):
    n: int = 4                     # samples per call


class GPTRecipe(NextTokenStep, LanguageModelRecipe):
    name = "gpt"
    Config = GPTTrainConfig
    Sample = GPTSample
    presets = {
        # The book's Hemingway model: 3 layers, 4 heads, 256 dims, 128 tokens of context, word tokens.
        "book": {"tokenizer": "word", "tokenizer_vocab": 10000, "n_layer": 3, "n_head": 4, "n_embd": 256,
                 "block_size": 128, "dropout": 0.1, "batch_size": 32, "lr": 3e-4, "max_steps": 5000,
                 "warmup_steps": 200, "eval_every": 500},
        # nanoGPT's "I only have a MacBook" character model of Shakespeare (README settings).
        # nanoGPT's model too: no biases, exact GELU.
        "nanogpt-cpu": {"tokenizer": "char", "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64,
                        "batch_size": 12, "dropout": 0.0, "bias": False, "activation": "gelu", "max_steps": 2000,
                        "lr": 1e-3, "warmup_steps": 100, "min_lr_ratio": 0.1, "beta2": 0.99, "weight_decay": 0.1,
                        # One deliberate difference: an output layer of its own. Tying it to the
                        # 65-character embedding cost 0.025 of val loss at 2,000 steps (BENCHMARKS.md).
                        "tie_weights": False},
    }

    # -- model --------------------------------------------------------------------------------
    def model_config(self) -> GPTConfig:
        c = self.config
        vocab = c.vocab_size or self.tokenizer.vocab_size
        if vocab < self.tokenizer.vocab_size:
            raise ConfigError(f"vocab_size {vocab} is smaller than the tokenizer's {self.tokenizer.vocab_size}")
        return GPTConfig(vocab_size=vocab, block_size=c.block_size, n_layer=c.n_layer, n_head=c.n_head,
                         n_embd=c.n_embd, dropout=c.dropout, bias=c.bias, tie_weights=c.tie_weights,
                         layer_norm_eps=c.layer_norm_eps, activation=c.activation)

    def build_modules(self) -> dict[str, nn.Module]:
        if self.tokenizer is None:
            self.load_data_once()  # the vocabulary decides the embedding size
        torch.manual_seed(self.config.seed)
        return {"model": GPT(self.model_config())}

    def model_width(self) -> int:
        return self.config.n_embd

    def language_model(self) -> nn.Module:
        return self.modules["model"]

    def context_size(self) -> int:
        return self.config.block_size

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        params = [p for p in self.modules["model"].parameters() if p.requires_grad]
        # Weight decay shrinks matrices (embeddings, linear weights); decaying biases and LayerNorm
        # gains would only pull them towards 0 for no regularisation benefit.
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": c.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        return {"model": torch.optim.AdamW(groups, lr=c.lr, betas=(c.beta1, c.beta2), **fused)}

    def setup(self, training: bool, resume: bool = False) -> None:
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        super().setup(training, resume)
        if training and resume and self.run_dir is not None:
            self._load_weights_to_fine_tune(Path(self.run_dir))
        if training and self.config.compile:
            # Only the training forward is compiled; sampling and evaluation run the plain module.
            self.train_modules["model"] = torch.compile(self.modules["model"])

    def _load_weights_to_fine_tune(self, run_dir: Path) -> None:
        """Weights without trainer state (an imported GPT-2) are fine-tuned from step 0; a shorter
        block_size keeps the first position embeddings (a 1024-token context is slow on a CPU)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from ..engine.rundir import RunDir, load_prefixed

        run = RunDir(run_dir)
        if run.has_checkpoint() or not run.weights_file.is_file():
            return
        try:
            tensors = load_file(str(run.weights_file))
        except (SafetensorError, OSError) as e:
            raise RunDirError(f"corrupt checkpoint {run.weights_file}: {str(e).splitlines()[0]}") from None
        wpe = tensors.get("model.wpe.weight")
        if wpe is not None and wpe.shape[0] > self.config.block_size:
            tensors["model.wpe.weight"] = wpe[:self.config.block_size].clone()
        load_prefixed({"model": self.modules["model"]}, tensors, str(run.weights_file))

    # -- data ----------------------------------------------------------------------------------
    def fit_tokenizer(self, train_text: str) -> Tokenizer:
        c = self.config
        if c.tokenizer == "gpt2":
            if not c.tokenizer_files:
                raise ConfigError("tokenizer=gpt2 needs tokenizer_files=DIR holding vocab.json and merges.txt "
                                  "(or import a GPT-2 checkpoint: genlab import gpt2 DIR --out RUN)")
            return build_tokenizer("gpt2", "", directory=c.tokenizer_files)
        return build_tokenizer(c.tokenizer, train_text, vocab_size=c.tokenizer_vocab)

    def tokenizer_settings(self) -> dict | None:
        c = self.config
        return None if c.tokenizer == "gpt2" else {"kind": c.tokenizer, "vocab": c.tokenizer_vocab}

    def check_corpus(self) -> None:
        self.corpus.window_batch("train", [0], self.config.block_size, 1)  # DataError now if too short
        self.corpus.window_batch("val", [0], self.config.block_size, 1)

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        x, y = self.corpus.window_batch("train", self.step_rng(index), c.block_size, c.batch_size)
        return self.shard(x).to(self.device), self.shard(y).to(self.device)

    # -- evaluation ---------------------------------------------------------------------------------
    def validation_nll(self) -> tuple[float, int]:
        """(total nats, tokens scored) over consecutive windows of the validation split."""
        c = self.config
        model, val = self.modules["model"], self.corpus.val
        n_windows = (len(val) - 1) // c.block_size
        if c.eval_tokens:
            n_windows = max(1, min(n_windows, c.eval_tokens // c.block_size))
        starts = torch.arange(n_windows) * c.block_size
        total, count = 0.0, 0
        for i in range(0, n_windows, c.batch_size):
            x, y = self.corpus.window_batch("val", starts[i:i + c.batch_size].numpy(), c.block_size, 0)
            with self.autocast():
                logits = model(x.to(self.device))
            total += next_token_loss(logits, y.to(self.device), reduction="sum").item()
            count += y.numel()
        return total, count

    def novelty_texts(self) -> list[str]:
        c = self.config
        if not c.novelty_samples:
            return []
        opts = GPTSample(n=c.novelty_samples, seed=0, max_new_tokens=c.novelty_tokens, temperature=1.0)
        return self.generate(opts).texts
