"""translation: an encoder-decoder Transformer trained from scratch on sentence pairs.

    genlab train translation                                      # embedded English-French scenes, minutes on a CPU
    genlab train translation --data multi30k/ --set max_steps=20000   # a folder of train.en / train.fr / val.* / test*.*
    genlab train translation --data pairs.tsv --set src=fr --set tgt=en --preset book
    genlab sample RUN --set text="A man rides a bike."            # one sentence (beam search; beam=1 is greedy)
    genlab sample RUN --set input=news.en                         # a file, line by line, into the output folder
    genlab eval RUN                                               # sacreBLEU + chrF greedy and beam, val loss

The model (models/seq2seq.py) is the paper's: multi-head attention, a position-wise
feed-forward network, sinusoidal or learned positions, pre- or post-LayerNorm. Text is cut into
byte-level BPE subwords (Hugging Face `tokenizers`, trained on the training split): one joint
vocabulary for both languages with shared, tied embeddings (`vocab=joint`) or one per language
(`vocab=separate`), saved as RUN/tokenizer-joint/ or RUN/tokenizer-src/ + RUN/tokenizer-tgt/.
Byte-level means any character can be read (nothing is "untranslatable", though scripts
never seen in training come out as noise).

Batches hold a token budget (`max_tokens` of padded source + target) of sentences of similar
length, fixed once from the corpus and seed; each epoch visits them in a seeded order, so batch
number i is always the same batch (exact resume). Loss: label-smoothed cross-entropy.
Evaluation during training: validation loss, perplexity and greedy BLEU on the first
`eval_sentences` validation pairs (the best checkpoint is kept by val BLEU). `genlab eval`:
the same on all of validation, plus BLEU and chrF with greedy and beam search on every test
split, with the sacreBLEU signatures.

Sentences longer than `max_len` tokens are dropped from training (counted in the log); at
sampling time such a line is an error that says to split it. An empty input line gives an
empty output line, so the output stays aligned with the input.

This is an encoder-decoder, so it is built on the plain Recipe base: the language-model base
(one token stream, windows of it, next-token loss over one sequence) does not describe pairs
of sequences, two tokenizers or cross-attention.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from ..engine.config import TrainConfig
from ..errors import ConfigError, DataError, RunDirError
from ..models.seq2seq import ACTIVATIONS, POSITIONS, Seq2Seq, Seq2SeqConfig, label_smoothed_loss
from ..outputs import Translations
from ..sampling.beam import beam_search, check_decoding_options, greedy_decode, greedy_stream
from .base import Recipe, SampleOptions

# Model ids: the tokenizer's ids shifted by 2, so padding and begin-of-sentence get ids of their
# own; </s> is the tokenizer's end-of-text token.
PAD, BOS, SHIFT = 0, 1, 2


@dataclass
class TranslationConfig(TrainConfig):
    src: str = "en"                   # source language key (file suffix / TSV header)
    tgt: str = "fr"                   # target language key
    vocab: str = "joint"              # joint (one BPE, shared tied embeddings) | separate (one BPE per language)
    vocab_size: int = 1000            # BPE tokens per tokenizer (>= 257: the 256 bytes come first)
    max_len: int = 128                # tokens per sentence (with </s>); longer training pairs are dropped
    max_tokens: int = 3000            # padded source + target tokens per batch (replaces batch_size)
    batch_size: int = 64              # not used: a batch holds max_tokens tokens of similar-length pairs
    d_model: int = 128                # model width (embeddings, attention, residual stream)
    n_head: int = 4                   # attention heads (must divide d_model)
    n_enc: int = 2                    # encoder layers
    n_dec: int = 2                    # decoder layers
    d_ff: int = 512                   # hidden width of the position-wise feed-forward network
    dropout: float = 0.1              # on embeddings, attention weights, sublayer outputs, feed-forward hidden
    activation: str = "relu"          # relu | gelu
    positions: str = "sinusoidal"     # sinusoidal | learned
    norm_first: bool = True           # pre-LN; false = the paper's post-LN
    tie_embeddings: bool = True       # output layer = target embedding
    label_smoothing: float = 0.1      # share of the target distribution spread over the other tokens
    optimizer: str = "adamw"          # adamw | adam
    beta1: float = 0.9                # Adam beta1
    beta2: float = 0.98               # Adam beta2 (the paper's 0.98)
    adam_eps: float = 1e-9            # Adam epsilon (the paper's 1e-9)
    weight_decay: float = 0.01        # adamw only, matrices only
    eval_sentences: int = 300         # validation pairs translated (greedy) for val_bleu during training; 0 = all
    beam: int = 4                     # beam size of `genlab eval`'s beam scores
    length_penalty: float = 0.6       # beam search: score / ((5 + length) / 6) ** length_penalty
    max_len_ratio: float = 1.5        # target tokens at most ratio * source tokens + max_len_extra
    max_len_extra: int = 10           # see max_len_ratio
    # trainer defaults: a few minutes on the embedded scenes with a 2-core CPU
    max_steps: int = 600              # optimizer steps
    lr: float = 1e-3                  # peak learning rate (noam: a multiplier of the paper's formula)
    lr_schedule: str = "cosine"       # constant | cosine | noam
    warmup_steps: int = 100           # linear warm-up steps
    min_lr_ratio: float = 0.05        # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0            # max global gradient norm
    eval_every: int = 200             # steps between evaluations (val loss, val BLEU)
    save_every: int = 200             # steps between checkpoints
    early_stop_metric: str = "val_bleu"  # the best checkpoint is the one with the best validation BLEU
    early_stop_mode: str = "max"      # higher BLEU is better

    def check(self) -> None:
        problems = [
            (self.src != self.tgt, "src and tgt must differ"),
            (self.vocab in ("joint", "separate"), "vocab must be joint or separate"),
            (self.vocab_size >= 257, "vocab_size must be >= 257 (byte-level BPE)"),
            (self.max_len >= 4, "max_len must be >= 4"),
            (self.max_tokens >= 2 * self.max_len, f"max_tokens must be >= 2 * max_len ({2 * self.max_len})"),
            (self.d_model % max(self.n_head, 1) == 0, f"d_model ({self.d_model}) must be divisible by n_head"),
            (min(self.n_head, self.n_enc, self.n_dec, self.d_ff) >= 1, "n_head, n_enc, n_dec, d_ff must be >= 1"),
            (0 <= self.dropout < 1 and 0 <= self.label_smoothing < 1, "dropout and label_smoothing must lie in [0, 1)"),
            (self.activation in ACTIVATIONS, f"activation must be one of {', '.join(ACTIVATIONS)}"),
            (self.positions in POSITIONS, f"positions must be one of {', '.join(POSITIONS)}"),
            (self.optimizer in ("adamw", "adam"), "optimizer must be adamw or adam"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.adam_eps > 0, "betas in [0, 1), adam_eps > 0"),
            (self.eval_sentences >= 0, "eval_sentences must be >= 0"),
        ]
        for ok, message in problems:
            if not ok:
                raise ConfigError(f"invalid config: {message}")
        check_decoding_options(self.beam, self.length_penalty, self.max_len_ratio, self.max_len_extra)


@dataclass
class TranslationSample(SampleOptions):
    n: int = 4                        # test sentences translated when neither text nor input is given
    text: str | list[str] = ""        # a sentence (commas and all); Python: also a list, Run.sample(text=[...])
    input: str = ""                   # a file: one sentence per line, translated into the output folder
    beam: int = 4                     # 1 = greedy
    length_penalty: float = 0.6       # beam search: score / ((5 + length) / 6) ** length_penalty
    max_len_ratio: float = 1.5        # target tokens at most ratio * source tokens + max_len_extra
    max_len_extra: int = 10           # see max_len_ratio

    def check(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.text and self.input:
            raise ConfigError("give text or input, not both")
        check_decoding_options(self.beam, self.length_penalty, self.max_len_ratio, self.max_len_extra)


def _encode_lines(tokenizer: Any, lines: list[str]) -> list[list[int]]:
    """Model ids of each line followed by </s> (batched through the Rust tokenizer)."""
    eos = tokenizer.eos_id + SHIFT
    return [[i + SHIFT for i in enc.ids] + [eos] for enc in tokenizer.hf.encode_batch(lines)]


def _pad(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out


class TranslationRecipe(Recipe):
    name = "translation"
    Config = TranslationConfig
    Sample = TranslationSample
    presets = {
        # The reference book's model and schedule: 6 + 6 layers, d 256, 8 heads, d_ff 1024, Adam
        # (0.9, 0.98), eps 1e-9, Noam warm-up over 2,000 steps (lr 1 = the paper's formula), smoothing 0.1.
        "book": {"n_enc": 6, "n_dec": 6, "d_model": 256, "n_head": 8, "d_ff": 1024, "dropout": 0.1,
                 "optimizer": "adam", "beta1": 0.9, "beta2": 0.98, "adam_eps": 1e-9, "weight_decay": 0.0,
                 "lr_schedule": "noam", "lr": 1.0, "warmup_steps": 2000, "label_smoothing": 0.1,
                 "norm_first": False, "vocab_size": 8000, "max_tokens": 6000, "max_steps": 20000,
                 "eval_every": 1000, "save_every": 1000},
    }

    tokenizers: dict[str, Any] | None = None

    # -- artifacts: the tokenizers ------------------------------------------------------------------------
    def _tokenizer_dirs(self, run_dir: Path) -> dict[str, Path]:
        if self.config.vocab == "joint":
            return {"joint": Path(run_dir) / "tokenizer-joint"}
        return {"src": Path(run_dir) / "tokenizer-src", "tgt": Path(run_dir) / "tokenizer-tgt"}

    def save_artifacts(self, run_dir: Path) -> None:
        for key, folder in self._tokenizer_dirs(run_dir).items():
            self.tokenizers[key].save(folder)

    def load_artifacts(self, run_dir: Path) -> None:
        from ..tokenizers import load_tokenizer

        dirs = self._tokenizer_dirs(run_dir)
        if not all((d / "tokenizer.json").is_file() for d in dirs.values()):
            raise RunDirError(f"{run_dir} has no {' / '.join(d.name for d in dirs.values())} "
                              f"(vocab={self.config.vocab}): not a translation run, or it is incomplete")
        self.tokenizers = {k: load_tokenizer(d) for k, d in dirs.items()}

    @property
    def src_tok(self) -> Any:
        return self.tokenizers.get("src", self.tokenizers.get("joint"))

    @property
    def tgt_tok(self) -> Any:
        return self.tokenizers.get("tgt", self.tokenizers.get("joint"))

    # -- model ---------------------------------------------------------------------------------------------
    def model_config(self) -> Seq2SeqConfig:
        c = self.config
        joint = c.vocab == "joint"
        return Seq2SeqConfig(src_vocab=self.src_tok.vocab_size + SHIFT, tgt_vocab=self.tgt_tok.vocab_size + SHIFT,
                             pad_id=PAD, d_model=c.d_model, n_head=c.n_head, n_enc=c.n_enc, n_dec=c.n_dec,
                             d_ff=c.d_ff, dropout=c.dropout, activation=c.activation, positions=c.positions,
                             max_len=c.max_len, norm_first=c.norm_first, shared_embeddings=joint,
                             tie_output=c.tie_embeddings)

    def build_modules(self) -> dict[str, nn.Module]:
        if self.tokenizers is None:
            self.load_data_once()  # the vocabularies decide the embedding sizes
        torch.manual_seed(self.config.seed)
        return {"model": Seq2Seq(self.model_config())}

    def model_width(self) -> int:
        return self.config.d_model  # for lr_schedule=noam

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        params = [p for p in self.modules["model"].parameters() if p.requires_grad]
        kw = {"lr": c.lr, "betas": (c.beta1, c.beta2), "eps": c.adam_eps}
        if c.optimizer == "adam":
            return {"model": torch.optim.Adam(params, **kw)}
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": c.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return {"model": torch.optim.AdamW(groups, **kw)}

    # -- data ------------------------------------------------------------------------------------------------
    def show_data(self, n: int | None = None) -> Translations:
        """n training pairs (8 by default) spread evenly over the training split; no tokenizer is fitted."""
        from ..data.parallel import load_parallel

        c = self.config
        src, tgt = load_parallel(c.data or None, c.src, c.tgt).splits["train"]
        idx = np.linspace(0, len(src) - 1, min(n or 8, len(src))).round().astype(int)
        return Translations([src[i] for i in idx], [tgt[i] for i in idx], c.src, c.tgt, name="data")

    def prepare_data(self) -> None:
        from ..data.parallel import load_parallel, token_batches
        from ..tokenizers import BPETokenizer

        c = self.config
        corpus = load_parallel(c.data or None, c.src, c.tgt)
        if "train" not in corpus.splits or "val" not in corpus.splits:
            raise DataError("parallel data needs train and val splits")
        train_src, train_tgt = corpus.splits["train"]
        if self.tokenizers is None:  # fitted on the training split only
            if c.vocab == "joint":
                self.tokenizers = {"joint": BPETokenizer.fit("\n".join(train_src + train_tgt), c.vocab_size)}
            else:
                self.tokenizers = {"src": BPETokenizer.fit("\n".join(train_src), c.vocab_size),
                                   "tgt": BPETokenizer.fit("\n".join(train_tgt), c.vocab_size)}
        self.corpus = corpus
        self.encoded = {name: (_encode_lines(self.src_tok, s), _encode_lines(self.tgt_tok, t))
                        for name, (s, t) in corpus.splits.items()}
        src_ids, tgt_ids = self.encoded["train"]
        # the decoder reads <s> + target, so both sides must fit max_len positions
        keep = [i for i in range(len(src_ids)) if len(src_ids[i]) <= c.max_len and len(tgt_ids[i]) <= c.max_len]
        corpus.dropped["train"]["too_long"] = len(src_ids) - len(keep)
        if not keep:
            raise DataError(f"every training pair is longer than max_len={c.max_len} tokens")
        self.train_pairs = ([src_ids[i] for i in keep], [tgt_ids[i] for i in keep])
        self.train_batches = token_batches(np.array([len(s) for s in self.train_pairs[0]]),
                                           np.array([len(t) for t in self.train_pairs[1]]), c.max_tokens, c.seed)

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batch `index`: epoch = index // number of batches, visited in a seeded order per epoch."""
        epoch, offset = divmod(index, len(self.train_batches))
        order = torch.randperm(len(self.train_batches), generator=self.step_rng(epoch, stream=7))
        rows = self.train_batches[int(order[offset])]
        if self.dist.enabled:  # batches vary in size, so each rank takes every world_size-th pair
            rows = rows[self.dist.rank::self.dist.world_size]
        src = _pad([self.train_pairs[0][i] for i in rows])
        tgt = [self.train_pairs[1][i] for i in rows]
        tgt_in = _pad([[BOS] + t[:-1] for t in tgt])
        tgt_out = _pad(tgt)
        return src.to(self.device), tgt_in.to(self.device), tgt_out.to(self.device)

    def training_step(self, batch: tuple[torch.Tensor, ...], step: int) -> dict[str, float]:
        src, tgt_in, tgt_out = batch
        with self.autocast():
            logits = self.train_modules["model"](src, tgt_in)
        loss, nll, n = label_smoothed_loss(logits, tgt_out, self.config.label_smoothing, PAD)
        self.optimize("model", loss)
        return {"loss": loss.item(), "nll": nll.item() / max(n, 1), "tokens": float(n)}

    # -- translating --------------------------------------------------------------------------------------
    def translate(self, sentences: list[str], beam: int = 1, length_penalty: float = 0.6,
                  max_len_ratio: float | None = None, max_len_extra: int | None = None,
                  too_long: str = "error") -> list[str]:
        """Translate sentences in length-sorted batches; empty lines give empty translations.
        too_long: "error" (a ConfigError naming the line) or "truncate" (evaluation)."""
        c = self.config
        ratio = c.max_len_ratio if max_len_ratio is None else max_len_ratio
        extra = c.max_len_extra if max_len_extra is None else max_len_extra
        model = self.modules["model"]
        ids = _encode_lines(self.src_tok, [s.strip() for s in sentences])
        for i, row in enumerate(ids):
            if len(row) > c.max_len:
                if too_long == "error":
                    raise ConfigError(f"sentence {i + 1} has {len(row)} tokens but the model's positions cover "
                                      f"{c.max_len}: split it into shorter sentences")
                ids[i] = row[:c.max_len - 1] + row[-1:]
        out = [""] * len(sentences)
        todo = sorted((i for i, s in enumerate(sentences) if s.strip()), key=lambda i: len(ids[i]))
        per_batch = max(1, 4000 // max(1, beam * c.max_len // 4))
        eos = self.tgt_tok.eos_id + SHIFT
        for start in range(0, len(todo), per_batch):
            chunk = todo[start:start + per_batch]
            src = _pad([ids[i] for i in chunk]).to(self.device)
            if beam == 1:
                hyps = greedy_decode(model, src, BOS, eos, PAD, ratio, extra)
            else:
                hyps = beam_search(model, src, BOS, eos, PAD, beam, length_penalty, ratio, extra)
            for i, h in zip(chunk, hyps):
                out[i] = self._detok(h)
        return out

    def _detok(self, ids: list[int]) -> str:
        return self.tgt_tok.decode([i - SHIFT for i in ids if i >= SHIFT]).strip()

    def stream(self, opts: TranslationSample) -> Iterator[str]:
        """Greedy translation of one sentence (opts.text) as pieces of text while tokens are decided.
        Options are checked now, not at the first piece."""
        opts.check()
        sentence = opts.text if isinstance(opts.text, str) else " ".join(opts.text)
        c = self.config
        src = _pad(_encode_lines(self.src_tok, [sentence.strip()]))
        if src.shape[1] > c.max_len:
            raise ConfigError(f"the sentence has {src.shape[1]} tokens but the model's positions cover {c.max_len}: "
                              "split it into shorter sentences")
        eos = self.tgt_tok.eos_id + SHIFT

        def pieces() -> Iterator[str]:
            if not sentence.strip():
                return
            tokens, shown = [], ""
            with self.eval_mode():
                for nxt in greedy_stream(self.modules["model"], src.to(self.device), BOS, eos, PAD,
                                         opts.max_len_ratio, opts.max_len_extra):
                    if int(nxt[0]) == eos:
                        break
                    tokens.append(int(nxt[0]))
                    text = self._detok(tokens)
                    if not text.endswith("\ufffd") and text.startswith(shown) and len(text) > len(shown):
                        yield text[len(shown):]  # a multi-byte character waits until it is complete
                        shown = text
        return pieces()

    def _sources(self, opts: TranslationSample) -> tuple[list[str], str]:
        if opts.input:
            path = Path(opts.input).expanduser()
            if not path.is_file():
                raise ConfigError(f"input file not found: {path}")
            try:
                lines = path.read_text(encoding="utf-8").split("\n")
            except UnicodeDecodeError:
                raise ConfigError(f"input file {path} is not UTF-8 text") from None
            if lines and lines[-1] == "":
                lines.pop()
            name = path.name[:-len(self.config.src) - 1] if path.name.endswith(f".{self.config.src}") else path.name
            return [line.rstrip("\r") for line in lines], name
        if opts.text:
            return ([opts.text] if isinstance(opts.text, str) else list(opts.text)), "translations"
        self.load_data_once()
        test = self.corpus.test_splits[0] if self.corpus.test_splits else "val"
        return self.corpus.splits[test][0][:opts.n], "translations"

    def generate(self, opts: TranslationSample) -> Translations:
        sources, name = self._sources(opts)
        user_text = bool(opts.text or opts.input)  # a too-long line of the user's is an error, of a test split cut
        hyps = self.translate(sources, opts.beam, opts.length_penalty, opts.max_len_ratio, opts.max_len_extra,
                              too_long="error" if user_text else "truncate")
        return Translations(sources, hyps, self.config.src, self.config.tgt, name=name)

    # -- evaluation ------------------------------------------------------------------------------------------
    def val_loss(self) -> float:
        """Mean next-token NLL (nats, no smoothing) over the whole validation split."""
        from ..data.parallel import token_batches

        src_ids, tgt_ids = self.encoded["val"]
        keep = [i for i in range(len(src_ids)) if len(src_ids[i]) <= self.config.max_len
                and len(tgt_ids[i]) <= self.config.max_len]
        batches = token_batches(np.array([len(src_ids[i]) for i in keep]), np.array([len(tgt_ids[i]) for i in keep]),
                                self.config.max_tokens)
        total, count = 0.0, 0
        for b in batches:
            rows = [keep[j] for j in b]
            src = _pad([src_ids[i] for i in rows]).to(self.device)
            tgt_in = _pad([[BOS] + tgt_ids[i][:-1] for i in rows]).to(self.device)
            tgt_out = _pad([tgt_ids[i] for i in rows]).to(self.device)
            with self.autocast():
                logits = self.modules["model"](src, tgt_in)
            _, nll, n = label_smoothed_loss(logits, tgt_out, 0.0, PAD)
            total, count = total + nll.item(), count + n
        return total / max(count, 1)

    def evaluate(self) -> dict[str, Any]:
        from ..metrics.bleu import corpus_bleu, corpus_chrf

        c = self.config
        loss = self.val_loss()
        out: dict[str, Any] = {"val_loss": loss, "perplexity": math.exp(min(loss, 50.0))}
        full = not self.training_run
        src, ref = self.corpus.splits["val"]
        if not full and c.eval_sentences:
            src, ref = src[:c.eval_sentences], ref[:c.eval_sentences]
        out["val_bleu"], signature = corpus_bleu(self.translate(src, 1, too_long="truncate"), ref)
        if not full:
            return out
        for split in self.corpus.test_splits:
            src, ref = self.corpus.splits[split]
            for beam in (1, c.beam):
                hyps = self.translate(src, beam, c.length_penalty, too_long="truncate")
                tag = "greedy" if beam == 1 else f"beam{beam}"
                out[f"{split}_bleu_{tag}"], signature = corpus_bleu(hyps, ref)
                out[f"{split}_chrf_{tag}"], chrf_signature = corpus_chrf(hyps, ref)
                if beam == c.beam:
                    break
            out["chrf_signature"] = chrf_signature
        out["bleu_signature"] = signature
        return out

    def setup(self, training: bool, resume: bool = False) -> None:
        self.training_run = training
        super().setup(training, resume)
