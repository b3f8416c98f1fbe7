"""MuseGAN (Dong et al. 2018) as laid out in the MuseGAN chapter of Foster's *Generative Deep
Learning*: a multi-track piano-roll generator and a 3-D convolutional critic.

Four latent inputs of size z_dim each steer the music at different scales:

    chords  (shared by all tracks, changes per bar)  -> temporal network -> one vector per bar
    style   (shared by all tracks, constant)
    melody  (one per track, changes per bar)         -> a temporal network per track
    groove  (one per track, constant)

A bar generator per track turns [chords_t, style, melody_t(track), groove(track)] into one
bar of that track: (steps, pitches) in [-1, 1] (tanh). The critic reads the whole piece,
(tracks, bars, steps, pitches), tracks as channels of 3-D convolutions, and returns one
unbounded score (WGAN: no sigmoid, no batch norm).

Shapes: latents pack into one tensor (batch, 2 + 2 * tracks, z_dim) = [chords, style,
melody x tracks, groove x tracks]; the generator returns (batch, tracks, bars, steps, pitches).
`width` scales every channel count (1.0 = the book's 1024 / 512 / 256 / 128 channels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class MuseGANConfig:
    n_tracks: int = 4
    n_bars: int = 2
    n_steps: int = 16            # steps per bar, a power of two >= 4
    n_pitches: int = 84          # a multiple of 12 (pitch axis factored as octaves x 12)
    z_dim: int = 32
    width: float = 1.0           # channel multiplier (1.0 = the book)
    output: str = "tanh"         # tanh (the book: every pitch on/off) | softmax (one pitch or a rest per step)
    hard: bool = False           # binary output with straight-through gradients (BinaryMuseGAN); False = the book
    steps_up: str = "transpose"  # how bars double their steps: transpose (the book) | resize (repeat, then convolve)
    onset_stream: bool = False   # the critic also reads where notes change (BinaryMuseGAN); False = the book
    stochastic: bool = False     # hard output: training plays drawn notes (BinaryMuseGAN), sampling the likeliest

    def check(self) -> None:
        if self.n_steps < 4 or self.n_steps & (self.n_steps - 1):
            raise ValueError("n_steps must be a power of two >= 4")
        if self.n_pitches % 12 or self.n_pitches < 12:
            raise ValueError("n_pitches must be a positive multiple of 12")
        if self.n_bars < 2 or self.n_tracks < 1 or self.z_dim < 1 or self.width <= 0:
            raise ValueError("need n_bars >= 2, n_tracks >= 1, z_dim >= 1 and width > 0")
        if self.output not in ("tanh", "softmax"):
            raise ValueError("output must be tanh or softmax")
        if self.steps_up not in ("transpose", "resize"):
            raise ValueError("steps_up must be transpose or resize")

    def ch(self, n: int) -> int:
        return max(4, int(round(n * self.width)))


def _init(module: nn.Module) -> None:
    """N(0, 0.02) weights for every conv/linear layer (the book's initializer), zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ChannelNorm(nn.BatchNorm1d):
    """Batch norm over the last (channel) axis of any (..., C) tensor: the statistics pool every
    position, as BatchNorm2d does over (H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class TemporalNetwork(nn.Module):
    """z (batch, z_dim) -> one vector per bar (batch, n_bars, z_dim): two transposed convolutions
    along the bar axis."""

    def __init__(self, c: MuseGANConfig):
        super().__init__()
        hidden = c.ch(1024)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c.z_dim, hidden, (2, 1)), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.ConvTranspose2d(hidden, c.z_dim, (c.n_bars - 1, 1)), nn.BatchNorm2d(c.z_dim), nn.ReLU())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])[..., 0].transpose(1, 2)


class ResizeUp(nn.Module):
    """(n, steps, a) -> (n, 2 steps, b): every step repeated, then a width-3 convolution over the
    steps (resize-convolution, Odena et al. 2016). A transposed convolution with kernel = stride
    gives even and odd steps their own weights, so an untrained bar alternates between two pitches
    every step and the generator must learn to make the two halves agree; here neighbouring steps
    start out alike and a held note is the easy thing to write."""

    def __init__(self, a: int, b: int):
        super().__init__()
        self.conv = nn.Conv1d(a, b, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.repeat_interleave(2, dim=1).transpose(1, 2)).transpose(1, 2)


class BarGenerator(nn.Module):
    """[chords_t, style, melody_t, groove] (batch, 4 * z_dim) -> one bar (batch, n_steps, n_pitches):
    a dense layer to 2 steps, doubling the steps, then the pitch axis grown in two steps
    (x octaves, then x 12 semitones).

    Output: `tanh` (the book) scores every pitch in [-1, 1] on its own. `softmax` reads the
    pitches plus one "rest" unit per step as one categorical distribution and returns
    2 p - 1 for the pitches (rest dropped): a step holds at most one clear note, as a chorale
    voice does, and the gradient does not vanish the way a saturated tanh's does (with tanh
    the CPU default sat at 69% empty bars after 600 steps).

    `hard` makes the output binary, as the data is: the forward pass plays the note (tanh > 0,
    or the most likely of pitches and rest) and the backward pass uses the soft output's
    gradient (straight-through; the deterministic binary neurons of Dong & Yang 2018,
    "BinaryMuseGAN"). Without it the critic compares soft rolls with binary ones; the
    generator's per-step distributions stayed flat (top probability 0.16 on average in the
    JSB benchmark) and their argmax, the notes played, jumped between pitches every step or two.
    `stochastic` plays a note drawn from the softmax (Gumbel-max; tanh: each pitch on with
    probability (y + 1) / 2) in training, the stochastic binary neurons of the same paper, and
    the most likely one when sampling. With
    the argmax alone the softmax stayed flat (top probability 0.04 of 49 choices, top-2 margin
    0.001 at the JSB benchmark's best checkpoint): a near-tie decides each step, so the note
    flickers (38% of notes one step long) and the critic's push against it is undone by the next
    update. A drawn note is only as steady as the distribution is sharp, so the critic's penalty
    for flicker becomes a push to sharpen it (top probability 0.34 after 400 steps).
    The book's transposed convolutions here all have kernel = stride, so each is a linear map
    from one input position to `stride` output positions; they are written as such (Linear,
    channels last), which computes the same function several times faster on a CPU. (A
    Linear has a bias per output position where the convolution shares one per channel.)"""

    def __init__(self, c: MuseGANConfig):
        super().__init__()
        h = c.ch(512)
        self.fc = nn.Sequential(nn.Linear(4 * c.z_dim, 2 * h), nn.BatchNorm1d(2 * h), nn.ReLU())
        chans = [h] + [c.ch(256)] * int(math.log2(c.n_steps // 2))         # book: 512 -> 512, 256, 256
        chans[1] = h
        up = (lambda a, b: nn.Linear(a, 2 * b)) if c.steps_up == "transpose" else ResizeUp
        self.ups = nn.ModuleList(up(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.up_norms = nn.ModuleList(ChannelNorm(b) for b in chans[1:])
        last, self.octaves = chans[-1], c.n_pitches // 12
        self.to_octaves = nn.Linear(last, self.octaves * last)
        self.octave_norm = ChannelNorm(last)
        self.to_pitches = nn.Linear(last, 12)
        self.to_rest = nn.Linear(last * self.octaves, 1) if c.output == "softmax" else None
        self.h, self.hard, self.stochastic = h, c.hard, c.stochastic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        x = self.fc(x).view(n, 2, self.h)                                  # (n, steps, channels)
        for up, norm in zip(self.ups, self.up_norms):
            x = torch.relu(norm(up(x).view(n, 2 * x.shape[1], -1)))        # double the steps
        x = torch.relu(self.octave_norm(self.to_octaves(x).view(n, x.shape[1], self.octaves, -1)))
        pitches = self.to_pitches(x).view(n, x.shape[1], self.octaves * 12)
        if self.to_rest is None:
            y = torch.tanh(pitches)
            if not self.hard:
                return y
            on = torch.rand_like(y) < (y + 1) / 2 if self.stochastic and self.training else y > 0
            return straight_through(y, torch.where(on, 1.0, -1.0).to(y.dtype))
        p = torch.cat([pitches, self.to_rest(x.flatten(2))], dim=-1).softmax(-1)
        if self.hard:
            scores = p.log() - torch.empty_like(p).exponential_().log() if self.stochastic and self.training else p
            p = straight_through(p, nn.functional.one_hot(scores.argmax(-1), p.shape[-1]).to(p.dtype))
        return 2 * p[..., :-1] - 1


def straight_through(soft: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """`hard` in the forward pass, the gradient of `soft` in the backward pass."""
    return soft + (hard - soft).detach()


class MuseGenerator(nn.Module):
    def __init__(self, c: MuseGANConfig):
        super().__init__()
        c.check()
        self.c = c
        self.chords_net = TemporalNetwork(c)
        self.melody_nets = nn.ModuleList(TemporalNetwork(c) for _ in range(c.n_tracks))
        self.bar_gens = nn.ModuleList(BarGenerator(c) for _ in range(c.n_tracks))
        _init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (batch, 2 + 2 * tracks, z_dim) -> (batch, tracks, bars, steps, pitches) in [-1, 1]."""
        c, n = self.c, z.shape[0]
        chords = self.chords_net(z[:, 0])                                  # (n, bars, z)
        style = z[:, 1, None, :].expand(n, c.n_bars, c.z_dim)
        tracks = []
        for k in range(c.n_tracks):
            melody = self.melody_nets[k](z[:, 2 + k])                      # (n, bars, z)
            groove = z[:, 2 + c.n_tracks + k, None, :].expand(n, c.n_bars, c.z_dim)
            x = torch.cat([chords, style, melody, groove], dim=-1).reshape(n * c.n_bars, 4 * c.z_dim)
            tracks.append(self.bar_gens[k](x).view(n, c.n_bars, c.n_steps, c.n_pitches))
        return torch.stack(tracks, dim=1)


class MuseCritic(nn.Module):
    """(batch, tracks, bars, steps, pitches) -> (batch,) scores. The book's 3-D convolutions collapse
    the bar axis (tracks as input channels), then the pitch axis (12 semitones, then octaves),
    then the step axis (stride 2). The bar and pitch layers are written as the linear maps they
    are (windows of bars; kernel = stride on pitches), channels last: the same function, several
    times faster on a CPU, double backward (the gradient penalty) included.

    `onset_stream` adds a second input path, after the onset/offset stream of Dong & Yang 2018
    (BinaryMuseGAN): the difference between neighbouring steps summed over the pitches, per
    track (0 where a note is held, > 0 where notes start or end), read per beat and then per bar
    and joined to the main path before the dense head. The main path has to squeeze each step's
    pitches into a few channels before it compares steps; this path hands the critic how often
    each voice changes note, which is where generated rolls differed from the data most (notes
    one or two steps long)."""

    def __init__(self, c: MuseGANConfig):
        super().__init__()
        c.check()
        a = c.ch(128)
        self.octaves = c.n_pitches // 12
        self.bars = nn.Linear(2 * c.n_tracks, a)               # Conv3d(tracks, a, (2, 1, 1))
        self.bars2 = nn.Linear((c.n_bars - 1) * a, a)          # Conv3d(a, a, (n_bars - 1, 1, 1))
        self.semitones = nn.Linear(12 * a, a)                  # Conv3d(a, a, (1, 1, 12), stride 12)
        self.octave = nn.Linear(self.octaves * a, a)           # Conv3d(a, a, (1, 1, octaves), stride octaves)
        n_halvings = int(math.log2(c.n_steps))
        step_chans = [a] * (n_halvings - 2) + [c.ch(256), c.ch(512)]       # book: 128, 128, 256, 512
        step_kernels = [2] * (n_halvings - 2) + [4, 3]
        layers, prev = [], a
        for ch, k in zip(step_chans, step_kernels):
            layers += [nn.Conv1d(prev, ch, k, stride=2, padding=(k - 1) // 2), nn.LeakyReLU(0.2)]
            prev = ch
        self.steps = nn.Sequential(*layers)
        beat = c.n_steps // 4
        self.onsets = nn.Sequential(nn.Conv1d(c.n_tracks, a, beat, stride=beat), nn.LeakyReLU(0.2),
                                    nn.Conv1d(a, a, 4, stride=4), nn.LeakyReLU(0.2),
                                    nn.Flatten()) if c.onset_stream else None
        n_in = prev + (a * c.n_bars if c.onset_stream else 0)
        self.head = nn.Sequential(nn.Linear(n_in, c.ch(1024)), nn.LeakyReLU(0.2), nn.Linear(c.ch(1024), 1))
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = nn.functional.leaky_relu
        n, t, b, s, p = x.shape
        extra = []
        if self.onsets is not None:
            flat = x.reshape(n, t, b * s, p)
            change = (flat[:, :, 1:] - flat[:, :, :-1]).abs().sum(-1) / 2      # (n, t, b*s - 1)
            extra = [self.onsets(nn.functional.pad(change, (1, 0)))]
        x = x.permute(0, 3, 4, 2, 1).unfold(3, 2, 1)                       # (n, s, p, b-1, tracks, 2)
        x = act(self.bars(x.reshape(n, s, p, b - 1, 2 * t)), 0.2)
        x = act(self.bars2(x.reshape(n, s, p, -1)), 0.2)                   # (n, s, p, a)
        x = act(self.semitones(x.reshape(n, s, self.octaves, -1)), 0.2)    # (n, s, octaves, a)
        x = act(self.octave(x.reshape(n, s, -1)), 0.2)                     # (n, s, a)
        return self.head(torch.cat([self.steps(x.transpose(1, 2)).flatten(1)] + extra, dim=1))[:, 0]


__all__ = ["BarGenerator", "ChannelNorm", "MuseCritic", "MuseGANConfig", "MuseGenerator", "ResizeUp",
           "TemporalNetwork", "straight_through"]
