"""The family base of language-model recipes (gpt, lstm-lm; ready for event and translation models).

What every language model here shares lives in `LanguageModelRecipe`: the corpus (embedded
default or the user's text, the first 90% for training and the last 10% held out), the
tokenizer fitted on the training part and saved beside the weights, evaluation (validation
loss, perplexity, bits per character, a novelty report of generated text) and sampling
through genlab.sampling (the same seeding, stop strings, top-k/top-p, repetition penalty and
streaming for every model). A recipe adds what differs: its model, how a batch is cut, how
the validation split is scored, and which tokenizer kinds it offers.

    parts = recipe.lm_parts()            # model + tokenizer + eos/block size, for any decoder
    texts = recipe.generate(opts)        # outputs.Texts
    for piece in recipe.stream(opts): ...
"""
from __future__ import annotations

import abc
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ..data.corpus import TokenCorpus, load_text_corpus, prepare_corpus
from ..errors import ConfigError, DataError
from ..models.gpt import next_token_loss
from ..outputs import Texts
from ..sampling.options import LMParts, SamplingOptions
from ..sampling.text import complete, stream_text
from ..tokenizers import Tokenizer, load_tokenizer
from .base import Recipe, SampleOptions

VAL_FRACTION = 0.1                   # the last 10% of the text is held out
NOVELTY_CORPUS_CHARS = 50_000_000    # novelty is measured against at most this much training text
START_TEXTS = ("\n", ".")
EXCERPT_CHARS = 600                  # characters per excerpt that `genlab data` shows            # an empty prompt starts after a line break, else after a full stop


@dataclass
class LMSample(SampleOptions, SamplingOptions):
    """`genlab sample` options of a language model: n, seed and genlab.sampling's options."""

    def check(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        self.check_sampling()


class NextTokenStep:
    """The training step of a decoder trained on (x, y) token windows: module 'model', next-token
    cross-entropy. Shared by the Transformer language models (gpt, music-transformer)."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, float]:
        x, y = batch
        with self.autocast():
            logits = self.train_modules["model"](x)
        loss = next_token_loss(logits, y)
        self.optimize("model", loss)
        return {"loss": loss.item()}


class LanguageModelRecipe(Recipe):
    Sample = LMSample
    tokenizer: Tokenizer | None = None
    corpus: TokenCorpus | None = None

    # -- what a language model recipe declares ---------------------------------------------
    @abc.abstractmethod
    def fit_tokenizer(self, train_text: str) -> Tokenizer:
        """A tokenizer of the configured kind, fitted on the training part of the text."""

    @abc.abstractmethod
    def language_model(self) -> nn.Module:
        """The model as sampling's forward contract expects it (see sampling/generate.py)."""

    def tokenizer_settings(self) -> dict[str, Any] | None:
        """Everything besides the training text that decides fit_tokenizer's result, so a fitted
        tokenizer can be reused from the user cache; None: fit it every time."""
        return None

    def context_size(self) -> int | None:
        """The model's context limit in tokens (None: unlimited, e.g. a recurrent model)."""
        return None

    @abc.abstractmethod
    def validation_nll(self) -> tuple[float, int]:
        """(total nats, tokens scored) on the held-out split (modules in eval mode)."""

    def novelty_texts(self) -> list[str]:
        """Generated texts for the novelty report of every evaluation ([] = no report)."""
        return []

    def check_corpus(self) -> None:
        """Raise DataError when the corpus cannot feed this model (called once it is built)."""

    # -- artifacts ---------------------------------------------------------------------------
    def save_artifacts(self, run_dir: Path) -> None:
        self.tokenizer.save(run_dir)

    def load_artifacts(self, run_dir: Path) -> None:
        self.tokenizer = load_tokenizer(run_dir)

    # -- data ----------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        c = self.config
        text = load_text_corpus(c.data or None)
        split_at = int(len(text) * (1 - VAL_FRACTION))
        if split_at < 1 or not text[:split_at].strip():
            raise DataError(f"{c.data or 'corpus'}: too little text ({len(text)} characters)")
        # the tokenizer is fitted on the training part only (validation stays unseen); tokenizer
        # and token files come from the user cache when this text was prepared before
        if self.run_dir is not None:  # where token files go when the user cache cannot be written
            fallback = Path(self.run_dir) / "data"
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="genlab-corpus-")
            fallback = Path(self._tmp.name)
        self.tokenizer, self.corpus = prepare_corpus(text, VAL_FRACTION, self.fit_tokenizer, self.tokenizer_settings(),
                                                     fallback, tokenizer=self.tokenizer)
        self.check_corpus()
        self.train_text = text[:min(split_at, NOVELTY_CORPUS_CHARS)]

    def show_data(self, n: int | None = None) -> Texts:
        """n excerpts (4 by default) of EXCERPT_CHARS spread evenly over the training part of the
        text, each starting at a line; no tokenizer is fitted."""
        c = self.config
        text = load_text_corpus(c.data or None)
        train = text[:int(len(text) * (1 - VAL_FRACTION))]
        if not train.strip():
            raise DataError(f"{c.data or 'corpus'}: too little text ({len(text)} characters)")
        n = n or 4
        texts, heads = [], []
        for i in range(n):
            start = len(train) * i // n
            line = train.rfind("\n", 0, start) + 1   # back to the start of its line
            texts.append(train[line:line + EXCERPT_CHARS])
            heads.append(f"excerpt {i + 1} of {n}: characters {line:,}-{line + len(texts[-1]):,} "
                         f"of {len(train):,} training characters ({c.data or 'embedded corpus'})")
        return Texts(texts, name="data", headings=heads)

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        from ..metrics.text import bits_per_char, novelty_report, perplexity

        self.load_data_once()
        nats, count = self.validation_nll()
        loss = nats / count
        out = {"val_loss": loss, "perplexity": perplexity(loss),
               "bits_per_char": bits_per_char(nats, count * self.corpus.chars_per_token("val"))}
        texts = self.novelty_texts()
        if texts:  # low loss with much copying is memorisation
            reports = [novelty_report(t, self.train_text) for t in texts]
            out["longest_copy_chars"] = float(max(r["longest_copy_chars"] for r in reports))
            for key, name in (("word_ngram_share", "copied_word_8gram_share"),
                              ("char_ngram_share", "copied_char_8gram_share")):
                shares = [r[key] for r in reports if math.isfinite(r[key])]
                if shares:
                    out[name] = sum(shares) / len(shares)
        return out

    # -- sampling ----------------------------------------------------------------------------------
    def start_ids(self) -> list[int]:
        """What an empty prompt starts from: the end-of-text token of a tokenizer that has one
        (GPT-2's convention), else a line break, else a full stop, else token 0."""
        tok = self.tokenizer
        if tok.eos_id is not None and tok.kind == "gpt2":
            return [tok.eos_id]
        for text in START_TEXTS:
            ids = tok.encode(text)
            if ids and not tok.count_unknown(ids):
                return ids
        return [0]

    def lm_parts(self) -> LMParts:
        """The model, tokenizer and decoding facts a server or any decoder needs."""
        return LMParts(model=self.language_model(), tokenizer=self.tokenizer, eos_id=self.tokenizer.eos_id,
                       block_size=self.context_size(), start_ids=tuple(self.start_ids()))

    def generate(self, opts: LMSample) -> Texts:
        """`opts.n` continuations of opts.prompt; row i is drawn with seed `opts.seed + i`."""
        opts.check()
        with self.autocast():
            return complete(self.lm_parts(), opts, n=opts.n, seed=opts.seed)

    def stream(self, opts: LMSample) -> Iterator[str]:
        """One continuation (seed opts.seed) as text pieces while it is decoded. Options are
        checked now, not at the first piece."""
        opts.check()
        parts = self.lm_parts()

        def pieces() -> Iterator[str]:
            with self.autocast():
                yield from stream_text(parts, opts, seed=opts.seed)
        return pieces()
