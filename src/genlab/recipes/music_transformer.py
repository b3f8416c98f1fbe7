"""music-transformer: a decoder-only Transformer over MIDI performance events (the Music
Transformer chapter; Huang et al. 2018, events of Oore et al. 2018).

Tokens: genlab.tokenizers.events (390: note-on/off x 128, 100 time-shifts of 10 ms, 32
velocity bins, EOS, PAD); the sustain pedal is applied to note lengths when reading.
Model: models/gpt.py with **learned absolute positions** (not the paper's relative attention),
so the context is at most `block_size` events; generation slides the window beyond it.
Data: every training piece is encoded and the pieces are laid end to end, each closed by EOS;
a batch is `batch_size` random windows of block_size + 1 events anywhere in that stream, so the
model sees whole pieces (the book keeps only each piece's first 2,048 tokens).
- embedded default: Bach's chorales from music21's corpus, played at `tempo` (velocity 80);
- `--data FILE.json`: JSB-format chorales, the same way; `--data FOLDER`: MIDI files
  (unreadable ones skipped and counted; every 10th file held out).

Sampling continues a prompt MIDI file (`--set prompt=PATH`; none: start after an EOS) through
genlab.sampling — the decoding path of the text models (KV cache, temperature, top-k, top-p,
streaming) — and returns the prompt plus continuation as MIDI.

`genlab eval`: held-out negative log-likelihood per event beside a unigram model's and an
untrained model's; the MuseGAN statistics and the texture (notes per bar, pitch range,
polyphony) of decoded samples beside the held-out music's and an untrained model's samples';
the share of decoded files that pretty_midi, music21 and mido read.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..data.midi import Note, Track, midi_bytes, piano_roll, read_tracks, roll_to_tracks, voices_to_roll, write_midi
from ..engine.config import TrainConfig
from ..errors import ConfigError, DataError
from ..models.gpt import GPT, GPTConfig, next_token_loss
from ..outputs import Midi
from ..sampling.generate import generate, stream
from ..sampling.logits import check_sampling_options
from ..tokenizers.events import EOS, VOCAB_SIZE, decode_notes, encode_midi, encode_notes, token_name
from .base import Recipe, SampleOptions
from .lm_base import NextTokenStep

HELD_OUT_EVERY = 10           # MIDI folders: every 10th file is held out
UNTRAINED_SEED_OFFSET = 7919  # the untrained baseline's init seed = seed + this
CHORALE_VELOCITY = 80


@dataclass
class MusicTransformerConfig(TrainConfig):
    n_layer: int = 4             # Transformer blocks (book: 6)
    n_head: int = 4              # attention heads (book: 8)
    n_embd: int = 128            # model width (book: 512)
    block_size: int = 256        # context in events (book: 2,048)
    dropout: float = 0.1         # dropout in attention, MLP and embeddings
    tempo: float = 100.0         # chorales: quarter notes per minute when played into events
    eval_windows: int = 32       # held-out windows of block_size events scored (0 = all)
    eval_samples: int = 4        # decoded samples for the musical statistics and parse rates
    eval_sample_events: int = 256  # events per decoded sample
    batch_size: int = 16
    lr: float = 1e-3
    max_steps: int = 1000
    warmup_steps: int = 100
    lr_schedule: str = "cosine"
    grad_clip: float = 1.0
    eval_every: int = 250
    save_every: int = 250
    log_every: int = 25
    threads: int = 1
    bounds = {"n_embd": "[1, inf)"}

    def check(self) -> None:
        if self.n_layer < 1 or self.n_head < 1 or self.n_embd % self.n_head or self.block_size < 8:
            raise ConfigError("invalid config: need n_layer, n_head >= 1, n_embd divisible by n_head, block_size >= 8")
        if self.tempo <= 0 or self.eval_windows < 0 or self.eval_samples < 0 or self.eval_sample_events < 1:
            raise ConfigError("invalid config: need tempo > 0, eval_windows/eval_samples >= 0, eval_sample_events >= 1")


@dataclass
class MusicSample(SampleOptions):
    n: int = 2                   # pieces per call
    prompt: str = ""             # a MIDI file to continue (empty: start after an end-of-piece token)
    max_new_tokens: int = 256    # events generated per piece at most (stops early at EOS)
    temperature: float = 1.0     # 0 = greedy (argmax)
    top_k: int = 0               # keep only the k most likely events (0 = off)
    top_p: float = 0.95          # keep the smallest set of events whose probability reaches p (1 = off)
    use_cache: bool = True       # reuse keys/values instead of recomputing the context

    def check(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1:
            raise ConfigError("sample n and max_new_tokens must be >= 1")
        check_sampling_options(self.temperature, self.top_k, self.top_p)
        if self.prompt and not Path(self.prompt).expanduser().is_file():
            raise ConfigError(f"prompt MIDI file not found: {self.prompt}")


def chorale_notes(piece: list[list[int | None]], tempo: float) -> list[Note]:
    """A JSB-format chorale (16th-note steps x voices) as notes at `tempo`."""
    roll = voices_to_roll(piece, lowest=0, n_pitches=128)
    tracks = roll_to_tracks(roll, steps_per_beat=4, tempo=tempo, lowest=0, velocity=CHORALE_VELOCITY)
    return sorted((n for t in tracks for n in t.notes), key=lambda n: (n.start, n.pitch))


def load_pieces(c: MusicTransformerConfig) -> tuple[list[list[int]], list[list[int]], str]:
    """(train token lists, held-out token lists, description); each piece ends with EOS."""
    from ..data.chorales import bach_chorales, load_step_json

    if not c.data or Path(c.data).suffix.lower() == ".json":
        data = load_step_json(c.data) if c.data else bach_chorales()
        held = data.get("test") or data.get("valid") or []
        enc = lambda pieces: [encode_notes(chorale_notes(p, c.tempo)) for p in pieces if p]  # noqa: E731
        return enc(data["train"]), enc(held), c.data or "Bach chorales (music21 corpus)"
    from ..data.midi import load_midi_folder

    folder = load_midi_folder(c.data)
    pieces = [encode_notes(sorted((n for t in read_tracks(pm) if not t.is_drum for n in t.notes),
                                  key=lambda n: (n.start, n.pitch))) for pm in folder.midis]
    held = [p for i, p in enumerate(pieces) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    train = [p for i, p in enumerate(pieces) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    skipped = f", {folder.skipped} unreadable file(s) skipped" if folder.skipped else ""
    return train, held or train[-1:], f"{c.data} ({len(pieces)} MIDI files{skipped})"


class MusicTransformerRecipe(NextTokenStep, Recipe):
    name = "music-transformer"
    Config = MusicTransformerConfig
    Sample = MusicSample
    presets = {"book": {"n_layer": 6, "n_head": 8, "n_embd": 512, "block_size": 2048, "batch_size": 16,
                        "lr": 1e-4, "max_steps": 20000}}

    # -- data --------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        c = self.config
        train, held, self.data_name = load_pieces(c)
        self.train_stream = torch.tensor([t for p in train for t in p], dtype=torch.long)
        self.held_stream = torch.tensor([t for p in held for t in p], dtype=torch.long)
        if len(self.train_stream) < c.block_size + 2 or len(self.held_stream) < 2:
            raise DataError(f"{self.data_name}: too few events ({len(self.train_stream)} for training, "
                            f"{len(self.held_stream)} held out) for block_size {c.block_size}")
        counts = torch.bincount(self.train_stream, minlength=VOCAB_SIZE).double() + 1.0   # add-one smoothing
        self.unigram_logp = (counts / counts.sum()).log()

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        starts = torch.randint(0, len(self.train_stream) - c.block_size - 1, (c.batch_size,),
                               generator=self.step_rng(index))
        idx = starts[:, None] + torch.arange(c.block_size + 1)
        w = self.shard(self.train_stream[idx])
        return w[:, :-1].to(self.device), w[:, 1:].to(self.device)

    # -- model -----------------------------------------------------------------------------------
    def model_config(self) -> GPTConfig:
        c = self.config
        return GPTConfig(vocab_size=VOCAB_SIZE, block_size=c.block_size, n_layer=c.n_layer, n_head=c.n_head,
                         n_embd=c.n_embd, dropout=c.dropout)

    def build_modules(self) -> dict[str, nn.Module]:
        torch.manual_seed(self.config.seed)
        return {"model": GPT(self.model_config())}

    def model_width(self) -> int:
        return self.config.n_embd

    # -- evaluation ----------------------------------------------------------------------------------
    def nll_per_event(self, model: nn.Module) -> float:
        """Mean negative log-likelihood (nats) per held-out event, over consecutive windows."""
        c = self.config
        data = self.held_stream
        block = min(c.block_size, len(data) - 1)
        n_windows = (len(data) - 1) // block
        if c.eval_windows:
            n_windows = min(n_windows, c.eval_windows)
        total, count = 0.0, 0
        for i in range(0, n_windows, c.batch_size):
            starts = torch.arange(i, min(i + c.batch_size, n_windows)) * block
            idx = starts[:, None] + torch.arange(block + 1)
            w = data[idx].to(self.device)
            with self.autocast():
                logits = model(w[:, :-1])
            total += next_token_loss(logits, w[:, 1:], reduction="sum").item()
            count += w[:, 1:].numel()
        return total / count

    def unigram_nll(self) -> float:
        """The same held-out events under the training set's event frequencies."""
        c = self.config
        block = min(c.block_size, len(self.held_stream) - 1)
        n = (len(self.held_stream) - 1) // block
        n = min(n, c.eval_windows) if c.eval_windows else n
        scored = self.held_stream[1:n * block + 1]
        return float(-self.unigram_logp[scored].mean())

    def untrained_model(self) -> nn.Module:
        state = torch.random.get_rng_state()
        torch.manual_seed(self.config.seed + UNTRAINED_SEED_OFFSET)
        model = GPT(self.model_config()).to(self.device).eval()
        torch.random.set_rng_state(state)
        return model

    def roll_of(self, notes: list[Note]) -> np.ndarray:
        """Notes -> one-track boolean roll (1, steps, 128) on the 16th-note grid at `tempo`."""
        return piano_roll(write_midi([Track(notes)], tempo=self.config.tempo), steps_per_beat=4, lowest=0,
                          n_pitches=128, sustain=False)

    def music_statistics(self, pieces: list[list[Note]]) -> dict[str, float]:
        """MuseGAN statistics and texture (notes per bar, pitch range, polyphony) of performances,
        one merged track on the 16th-note grid at `tempo`, cut into 2-bar segments as in the
        musegan benchmark."""
        from ..metrics.music import music_stats, texture_stats

        segs = bar_segments([self.roll_of(n) for n in pieces if n])
        return {**music_stats(segs, lowest=0), **texture_stats(segs)}

    def held_out_pieces(self, n: int, events: int) -> list[list[Note]]:
        """The first `events` events of (at most) n held-out pieces: like-for-like with samples,
        which start a piece too (a window from mid-piece would lose the notes held into it)."""
        held = self.held_stream.tolist()
        ends = [i for i, t in enumerate(held) if t == EOS]
        starts = [0] + [e + 1 for e in ends[:-1]]
        return [decode_notes(held[a:min(a + events, e)]) for a, e in zip(starts, ends)][:n]

    def evaluate(self) -> dict[str, float]:
        from ..metrics.music import parse_rates

        c = self.config
        untrained = self.untrained_model()
        nll = self.nll_per_event(self.modules["model"])
        out = {"nll_per_event": nll, "unigram_nll_per_event": self.unigram_nll(),
               "untrained_nll_per_event": self.nll_per_event(untrained),
               "uniform_nll_per_event": math.log(VOCAB_SIZE)}
        if c.eval_samples:
            sample = lambda model: [decode_notes(g) for g in self.continuations(  # noqa: E731
                c.eval_samples, seed=0, prompt=[EOS], max_new=c.eval_sample_events, temperature=1.0, top_k=0,
                top_p=0.95, model=model)]
            notes = sample(self.modules["model"])
            groups = {"gen_": notes, "untrained_": sample(untrained),
                      "data_": self.held_out_pieces(max(c.eval_samples * 4, 16), c.eval_sample_events)}
            for prefix, group in groups.items():
                out.update({f"{prefix}{k}": v for k, v in self.music_statistics(group).items()})
            out.update(parse_rates([midi_bytes(write_midi([Track(n)], tempo=c.tempo)) for n in notes]))
        return out

    # -- sampling ----------------------------------------------------------------------------------
    def continuations(self, n: int, seed: int, prompt: list[int], max_new: int, temperature: float, top_k: int,
                      top_p: float, use_cache: bool = True, model: nn.Module | None = None) -> list[list[int]]:
        """n event continuations of `prompt` (row i drawn with seed + i) through genlab.sampling."""
        gens = generate(model or self.modules["model"], [prompt] * n, max_new, temperature=temperature, top_k=top_k,
                        top_p=top_p, eos_id=EOS, seed=seed, use_cache=use_cache, block_size=self.config.block_size)
        return [g.tokens for g in gens]

    def prompt_tokens(self, opts: MusicSample) -> list[int]:
        if not opts.prompt:
            return [EOS]
        return encode_midi(Path(opts.prompt).expanduser(), eos=False) or [EOS]

    def show_data(self, n: int | None = None) -> Midi:
        """The first n training pieces (4 by default), decoded from the events the model reads."""
        c = self.config
        train, _, data_name = load_pieces(c)
        pieces = [[t for t in p if t != EOS] for p in train[:n or 4]]
        midis = [midi_bytes(write_midi([Track(decode_notes(p), name="performance")], tempo=c.tempo)) for p in pieces]
        meta = {"recipe": self.name, "data": data_name, "events": [len(p) for p in pieces], "tempo": c.tempo,
                "steps_per_beat": 4}
        return Midi(midis, metadata=meta, name="data")

    def generate(self, opts: MusicSample) -> Midi:
        opts.check()
        prompt = self.prompt_tokens(opts)
        gens = self.continuations(opts.n, opts.seed, prompt, opts.max_new_tokens, opts.temperature, opts.top_k,
                                  opts.top_p, opts.use_cache)
        body = [t for t in prompt if t != EOS]
        midis = [midi_bytes(write_midi([Track(decode_notes(body + g), name="performance")], tempo=self.config.tempo))
                 for g in gens]
        meta = {"recipe": self.name, "seed": opts.seed, "prompt": opts.prompt, "prompt_events": len(body),
                "events": [len(g) for g in gens], "tempo": self.config.tempo, "steps_per_beat": 4}
        return Midi(midis, metadata=meta, name="music")

    def stream(self, opts: MusicSample) -> Iterator[str]:
        """One continuation (seed opts.seed) as event names ("on:60 ", "shift:100ms ", ...) while decoded."""
        opts.check()
        prompt = self.prompt_tokens(opts)
        for t in stream(self.modules["model"], prompt, opts.max_new_tokens, temperature=opts.temperature,
                        top_k=opts.top_k, top_p=opts.top_p, eos_id=EOS, seed=opts.seed, use_cache=opts.use_cache,
                        block_size=self.config.block_size):
            yield token_name(int(t)) + " "


def bar_segments(rolls: list[np.ndarray], steps_per_bar: int = 16, n_bars: int = 2) -> np.ndarray:
    """One-track rolls (1, steps, pitches) -> (segments, 1, n_bars, steps_per_bar, pitches): every
    whole n_bars-bar segment, one after another."""
    length = steps_per_bar * n_bars
    out = [r[:, a:a + length].reshape(1, n_bars, steps_per_bar, -1) for r in rolls
           for a in range(0, r.shape[1] - length + 1, length)]
    if not out:
        return np.zeros((1, 1, n_bars, steps_per_bar, 128), dtype=bool)
    return np.stack(out)
