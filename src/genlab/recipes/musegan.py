"""musegan: multi-track piano rolls from a WGAN-GP (Dong et al. 2018; the MuseGAN chapter of
Foster's *Generative Deep Learning*).

Data: pieces become boolean rolls (tracks, steps, pitches) on a 16th-note grid, cut into
segments of `n_bars` bars (a new segment every `hop_bars` bars; silent segments dropped).
- embedded default: Bach's four-part chorales from music21's corpus (tracks = S, A, T, B),
  converted once and cached (genlab.data.chorales);
- `--data FILE.json`: the JSB chorales' step format ({"train": [...], "test"/"valid": [...]});
- `--data FOLDER` (or one .mid): MIDI files; a file's instruments in file order fill the
  tracks (the first n_tracks; fewer leave silent tracks), read at `steps_per_bar / 4` steps per
  beat; unreadable files are skipped and counted; every 10th file is held out.

Training: `n_critic` critic steps (Wasserstein loss + gradient penalty) per generator step,
Adam(lr, (0.5, 0.9)) for both, samples from an EMA of the generator. The generator's output is
the book's tanh per pitch (`output=tanh`) or, by default, a softmax over the pitches and a rest
per step and track (`output=softmax`); by default it is binary with straight-through gradients
(`hard`) and plays notes drawn from the softmax in training, the likeliest when sampling
(`stochastic`), bars double their steps by resize-convolution (`steps_up=resize`) and the critic
also reads where notes change (`onset_stream`) — see models/musegan.py for why; `--preset book`
keeps the book's layout. A soft output becomes notes where it is > 0 (`binarize=threshold`) or, for
one-voice tracks such as chorale voices, at most one pitch per step and track
(`binarize=monophonic`, default).

`genlab eval`: the MuseGAN metrics (genlab.metrics.music; drum-pattern for tracks that are drum
tracks in most files of a MIDI folder) of generated segments beside the training data's and an
untrained generator's, and the share of generated MIDI files that
pretty_midi and music21 read.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.midi import midi_bytes, piano_roll, roll_to_midi, voices_to_roll
from ..engine.config import TrainConfig
from ..engine.ema import ema_decay, ema_update
from ..errors import ConfigError, DataError
from ..models.losses import wgan_gp_critic_loss
from ..models.musegan import MuseCritic, MuseGANConfig, MuseGenerator
from ..outputs import Midi
from .base import Recipe, SampleOptions

HELD_OUT_EVERY = 10           # MIDI folders: every 10th file is held out
UNTRAINED_SEED_OFFSET = 7919  # the untrained baseline generator's init seed = seed + this
EVAL_SEED = 12345             # latents of the evaluation samples


@dataclass
class MuseGANRecipeConfig(TrainConfig):
    alternating_steps = True     # critic and generator step in turn (no grad_accum)
    # runs saved before the binary output, resize upsampling, onset stream and stochastic notes had the book's
    saved_defaults = {"hard": False, "steps_up": "transpose", "onset_stream": False, "stochastic": False}
    n_tracks: int = 4            # tracks (voices / instruments) per piece
    n_bars: int = 2              # bars per generated segment
    steps_per_bar: int = 16      # 16th notes in 4/4
    n_pitches: int = 48          # piano-roll rows, a multiple of 12 (book: 84 from C1)
    lowest: int = 36             # MIDI pitch of the lowest row (36 = C2: the chorales span 36-81)
    hop_bars: int = 1            # a new training segment every this many bars
    z_dim: int = 32              # size of each latent (chords, style, melody, groove)
    width: float = 0.125         # channel multiplier (book: 1.0)
    output: str = "softmax"      # generator output: softmax (one pitch or a rest per step and track) | tanh (book)
    hard: bool = True            # binary generator output, straight-through gradients (BinaryMuseGAN; book: False)
    steps_up: str = "resize"     # bars double their steps by: resize (repeat + convolve) | transpose (book)
    onset_stream: bool = True    # the critic also reads where notes change (BinaryMuseGAN; book: False)
    stochastic: bool = True      # training plays sampled notes, sampling the likeliest (BinaryMuseGAN; book: False)
    n_critic: int = 5            # critic steps per generator step
    gp_weight: float = 10.0      # lambda of the gradient penalty
    beta1: float = 0.5           # Adam beta1 (book 0.5)
    beta2: float = 0.9           # Adam beta2 (book 0.9)
    ema_decay: float = 0.99      # > 0: sample from an EMA of the generator (0 = the raw generator)
    binarize: str = "monophonic"  # monophonic (one pitch per step and track) | threshold (every pitch > 0)
    tempo: float = 100.0         # tempo of the written MIDI files (quarter notes per minute)
    program: int = 0             # General MIDI program of every track (0 = piano, 19 = church organ)
    eval_samples: int = 512      # generated segments scored by evaluate()
    eval_parse: int = 16         # of which this many are written as MIDI and read back by two parsers
    lr: float = 1e-3
    batch_size: int = 32
    max_steps: int = 1200
    save_every: int = 100
    eval_every: int = 100
    log_every: int = 25
    early_stop_metric: str = "stat_gap"   # keep the checkpoint closest to the data's statistics (no early stop)
    threads: int = 1

    def check(self) -> None:
        try:
            self.model_config().check()
        except ValueError as e:
            raise ConfigError(f"invalid config: {e} (steps_per_bar, n_pitches, n_bars, n_tracks)") from None
        if self.steps_per_bar % 4:
            raise ConfigError("invalid config: steps_per_bar must be a multiple of 4 (4/4 bars)")
        if self.n_critic < 1 or self.gp_weight < 0 or self.hop_bars < 1:
            raise ConfigError("invalid config: need n_critic >= 1, gp_weight >= 0 and hop_bars >= 1")
        if self.output not in ("softmax", "tanh"):
            raise ConfigError("invalid config: output must be softmax or tanh")
        if self.binarize not in ("monophonic", "threshold"):
            raise ConfigError("invalid config: binarize must be monophonic or threshold")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError("invalid config: ema_decay must be in [0, 1)")
        if not 0 <= self.program <= 127 or not 0 <= self.lowest <= 127 - self.n_pitches + 1 or self.tempo <= 0:
            raise ConfigError("invalid config: need program in 0-127, lowest + n_pitches <= 128 and tempo > 0")
        if self.eval_samples < 8 or self.eval_parse < 0:
            raise ConfigError("invalid config: need eval_samples >= 8 and eval_parse >= 0")

    def model_config(self) -> MuseGANConfig:
        return MuseGANConfig(self.n_tracks, self.n_bars, self.steps_per_bar, self.n_pitches, self.z_dim, self.width,
                             self.output, self.hard, self.steps_up, self.onset_stream, self.stochastic)


@dataclass
class MuseGANSample(SampleOptions):
    n: int = 4                   # pieces (segments of n_bars bars) per call

    def check(self) -> None:
        if self.n < 1:
            raise ConfigError(f"sample n must be >= 1, got {self.n}")


# ---------------------------------------------------------------------------------------------
# Data: pieces -> rolls -> bar segments
# ---------------------------------------------------------------------------------------------
def segments(roll: np.ndarray, n_bars: int, steps_per_bar: int, hop_bars: int = 1) -> np.ndarray:
    """(tracks, steps, pitches) -> (segments, tracks, n_bars, steps_per_bar, pitches): windows of
    n_bars bars every hop_bars bars; all-silent windows are dropped."""
    t, n, p = roll.shape
    length, hop = n_bars * steps_per_bar, hop_bars * steps_per_bar
    starts = range(0, n - length + 1, hop)
    out = [roll[:, a:a + length].reshape(t, n_bars, steps_per_bar, p) for a in starts]
    out = [s for s in out if s.any()]
    return np.stack(out) if out else np.zeros((0, t, n_bars, steps_per_bar, p), dtype=bool)


def fit_tracks(roll: np.ndarray, n_tracks: int) -> np.ndarray:
    """Keep the first n_tracks tracks; pad with silent tracks when there are fewer."""
    roll = roll[:n_tracks]
    if roll.shape[0] < n_tracks:
        roll = np.concatenate([roll, np.zeros((n_tracks - roll.shape[0],) + roll.shape[1:], dtype=bool)])
    return roll


def load_rolls(c: MuseGANRecipeConfig) -> tuple[list[np.ndarray], list[np.ndarray], str, list[bool]]:
    """(train rolls, held-out rolls, description, drum flag per track), each roll (n_tracks,
    steps, n_pitches). A track is a drum track when it is one in most of a folder's files."""
    from ..data.chorales import bach_chorales, load_step_json

    if not c.data or Path(c.data).suffix.lower() == ".json":
        if c.steps_per_bar != 16:
            raise ConfigError("the chorales are on a 16th-note grid: steps_per_bar must be 16 (or use --data FOLDER)")
        data = load_step_json(c.data) if c.data else bach_chorales()
        held = data.get("test") or data.get("valid") or []
        to_roll = lambda piece: fit_tracks(voices_to_roll(piece, c.lowest, c.n_pitches), c.n_tracks)  # noqa: E731
        return ([to_roll(p) for p in data["train"] if p], [to_roll(p) for p in held if p],
                c.data or "Bach chorales (music21 corpus)", [False] * c.n_tracks)
    from ..data.midi import load_midi_folder

    folder = load_midi_folder(c.data)
    rolls = [fit_tracks(piano_roll(pm, c.steps_per_bar // 4, c.lowest, c.n_pitches), c.n_tracks)
             for pm in folder.midis]
    held = [r for i, r in enumerate(rolls) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    train = [r for i, r in enumerate(rolls) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    votes = np.zeros(c.n_tracks)
    for pm in folder.midis:                      # instruments in file order, as piano_roll reads them
        flags = [inst.is_drum for inst in pm.instruments][:c.n_tracks]
        votes[:len(flags)] += flags
    skipped = f", {folder.skipped} unreadable file(s) skipped" if folder.skipped else ""
    return train, held, f"{c.data} ({len(rolls)} MIDI files{skipped})", (votes > len(rolls) / 2).tolist()


def binarize(x: torch.Tensor, mode: str, output: str = "tanh") -> np.ndarray:
    """Generator output in [-1, 1] (..., steps, pitches) -> boolean roll. threshold: every pitch
    > 0. monophonic: the top pitch of a step, if it is > 0 (tanh) or, for softmax output, if it
    is more likely than the rest (1 - the pitches' total probability)."""
    if mode == "threshold":
        return (x > 0).cpu().numpy()
    top, idx = x.max(-1, keepdim=True)
    if output == "softmax":
        p = (x + 1) / 2
        keep = (top + 1) / 2 > 1 - p.sum(-1, keepdim=True)
    else:
        keep = top > 0
    on = torch.zeros_like(x, dtype=torch.bool).scatter_(-1, idx, keep)
    return on.cpu().numpy()


# ---------------------------------------------------------------------------------------------
# The recipe
# ---------------------------------------------------------------------------------------------
class MuseGANRecipe(Recipe):
    name = "musegan"
    Config = MuseGANRecipeConfig
    Sample = MuseGANSample
    presets = {"book": {"width": 1.0, "output": "tanh", "hard": False, "steps_up": "transpose", "onset_stream": False,
                        "stochastic": False, "n_pitches": 84, "lowest": 24, "z_dim": 32, "batch_size": 64, "lr": 1e-3,
                        "n_critic": 5, "gp_weight": 10.0, "max_steps": 6000}}

    # -- data --------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        c = self.config
        train, held, self.data_name, self.drums = load_rolls(c)
        seg = lambda rolls: [segments(r, c.n_bars, c.steps_per_bar, c.hop_bars) for r in rolls]  # noqa: E731
        parts = [s for s in seg(train) if len(s)]
        if not parts:
            raise DataError(f"{self.data_name}: no piece is {c.n_bars} bars long with a note in it")
        self.train = torch.from_numpy(np.concatenate(parts))           # (N, tracks, bars, steps, pitches) bool
        held_parts = [s for s in seg(held) if len(s)]
        self.held_out = np.concatenate(held_parts) if held_parts else None

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        c = self.config
        n_z = 2 + 2 * c.n_tracks
        reals = torch.stack([self.train[self.batch_indices(index * c.n_critic + i, len(self.train))]
                             for i in range(c.n_critic)])
        g = self.step_rng(index)
        z_d = torch.randn(c.n_critic, c.batch_size, n_z, c.z_dim, generator=g)
        eps = torch.rand(c.n_critic, c.batch_size, 1, 1, 1, 1, generator=g)
        z_g = torch.randn(c.batch_size, n_z, c.z_dim, generator=g)
        out = {"real": reals.float() * 2 - 1, "z_d": self.shard(z_d.transpose(0, 1)).transpose(0, 1),
               "eps": self.shard(eps.transpose(0, 1)).transpose(0, 1), "z_g": self.shard(z_g)}
        return {k: v.to(self.device) for k, v in out.items()}

    # -- model -----------------------------------------------------------------------------------
    def build_modules(self) -> dict[str, nn.Module]:
        c = self.config
        torch.manual_seed(c.seed)
        mc = c.model_config()
        modules: dict[str, nn.Module] = {"generator": MuseGenerator(mc), "critic": MuseCritic(mc)}
        if c.ema_decay > 0:
            modules["generator_ema"] = copy.deepcopy(modules["generator"]).requires_grad_(False)
        return modules

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {name: torch.optim.Adam(self.modules[name].parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
                for name in ("critic", "generator")}

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        c = self.config
        G, C = self.train_modules["generator"], self.train_modules["critic"]
        logs: dict[str, float] = {}
        for i in range(c.n_critic):
            with torch.no_grad():
                fake = G(batch["z_d"][i])
            loss, logs = wgan_gp_critic_loss(C, batch["real"][i], fake, None, batch["eps"][i], c.gp_weight,
                                             self.autocast())
            self.optimize("critic", loss)
        with self.autocast():
            g_loss = -C(G(batch["z_g"])).float().mean()
        self.optimize("generator", g_loss)
        if "generator_ema" in self.modules:
            ema_update(self.modules["generator_ema"], self.modules["generator"], ema_decay(step, c.ema_decay))
        return {**logs, "g_loss": g_loss.item()}

    # -- sampling ----------------------------------------------------------------------------------
    def sampler(self) -> nn.Module:
        return self.modules["generator_ema" if "generator_ema" in self.modules else "generator"]

    def generate_rolls(self, n: int, seed: int, generator: nn.Module | None = None, chunk: int = 256) -> np.ndarray:
        """n boolean segments (n, tracks, bars, steps, pitches) from latents of `seed`."""
        c = self.config
        G = generator or self.sampler()
        z = torch.randn(n, 2 + 2 * c.n_tracks, c.z_dim, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            outs = [binarize(G(z[i:i + chunk].to(self.device)).float(), c.binarize, c.output)
                    for i in range(0, n, chunk)]
        return np.concatenate(outs)

    def track_names(self) -> list[str]:
        c = self.config
        chorales = not c.data or Path(c.data).suffix.lower() == ".json"
        if chorales and c.n_tracks == 4:
            return ["soprano", "alto", "tenor", "bass"]
        return [f"track {k + 1}" for k in range(c.n_tracks)]

    def to_midi(self, rolls: np.ndarray) -> list[bytes]:
        c = self.config
        flat = rolls.reshape(rolls.shape[0], c.n_tracks, -1, c.n_pitches)
        names = self.track_names()
        return [midi_bytes(roll_to_midi(r, c.steps_per_bar // 4, c.tempo, c.lowest, programs=[c.program] * c.n_tracks,
                                        names=names)) for r in flat]

    def as_midi(self, rolls: np.ndarray, name: str, **meta: object) -> Midi:
        """Segments (n, tracks, bars, steps, pitches) as the typed output: MIDI plus their piano rolls."""
        c = self.config
        flat = rolls.reshape(len(rolls), c.n_tracks, -1, c.n_pitches)
        meta = {"tempo": c.tempo, "steps_per_beat": c.steps_per_bar // 4, "lowest": c.lowest, "n_bars": c.n_bars,
                "programs": [c.program] * c.n_tracks, "track_names": self.track_names(), "recipe": self.name, **meta}
        return Midi(self.to_midi(rolls), rolls=flat, metadata=meta, name=name)

    def generate(self, opts: MuseGANSample) -> Midi:
        opts.check()
        return self.as_midi(self.generate_rolls(opts.n, opts.seed), "musegan", seed=opts.seed)

    def show_data(self, n: int | None = None) -> Midi:
        """n training segments (4 by default) spread evenly over the training pieces, as the
        generator must learn to write them (n_bars bars, every track)."""
        self.load_data_once()
        n = min(n or 4, len(self.train))
        idx = np.linspace(0, len(self.train) - 1, n).round().astype(int)
        return self.as_midi(self.train[idx].numpy(), "data", data=self.data_name, segments=idx.tolist())

    # -- evaluation ---------------------------------------------------------------------------------
    def untrained_generator(self) -> nn.Module:
        """A freshly initialised generator: the baseline every figure is shown beside."""
        state = torch.random.get_rng_state()
        torch.manual_seed(self.config.seed + UNTRAINED_SEED_OFFSET)
        G = MuseGenerator(self.config.model_config()).to(self.device).eval()
        torch.random.set_rng_state(state)
        return G

    def evaluate(self) -> dict[str, float]:
        from ..metrics.music import music_stats, parse_rates

        c = self.config
        if getattr(self, "_data_stats", None) is None:
            self._data_stats = music_stats(self.train.numpy(), c.lowest, self.drums)
        gen = self.generate_rolls(c.eval_samples, EVAL_SEED)
        stats = music_stats(gen, c.lowest, self.drums)
        base = music_stats(self.generate_rolls(c.eval_samples, EVAL_SEED, self.untrained_generator()), c.lowest,
                           self.drums)
        out = {f"gen_{k}": v for k, v in stats.items()}
        out.update({f"data_{k}": v for k, v in self._data_stats.items()})
        out.update({f"untrained_{k}": v for k, v in base.items()})
        out["stat_gap"] = stat_gap(stats, self._data_stats)
        out["untrained_stat_gap"] = stat_gap(base, self._data_stats)
        if c.eval_parse:
            out.update(parse_rates(self.to_midi(gen[:c.eval_parse])))
        return out


def stat_gap(gen: dict[str, float], data: dict[str, float]) -> float:
    """One number for "how far from the data": the mean relative error of pitch classes per bar
    and qualified-note rate, plus the excess of empty bars (0 = indistinguishable on these)."""
    rel = [abs(gen[k] - data[k]) / max(abs(data[k]), 1e-9) if math.isfinite(gen.get(k, math.nan)) else 1.0
           for k in ("pitch_classes_per_bar", "qualified_note_rate")]
    return float(np.mean(rel) + max(0.0, gen["empty_bar_rate"] - data["empty_bar_rate"]))
