"""Denoising diffusion (DDPM / DDIM) with an attention U-Net, optionally class-conditional with
classifier-free guidance.

Training (Ho et al. 2020): pick t uniformly, noise an image in closed form,
x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, and regress the U-Net's output on eps, x_0 or
v (config `prediction`) with an L2, L1 or Huber loss. An EMA copy of the weights (module
"ema", not trained by the optimizer) is updated after every optimizer step and used for
sampling. Conditional models (`conditional=true`) see a label embedding; with probability
`p_uncond` the label is replaced by a "null" class, so one network is both the conditional
and the unconditional model that classifier-free guidance mixes at sampling time.

Text-conditional models (`text_encoder=CLIP_RUN`, procedural faces; diffusion/text.py): the
U-Net sees the pooled CLIP embedding of one of `captions_per_image` captions per face (through a
linear map scaled like a class embedding, `text_projection`), dropped to zero with probability
`p_uncond`. `genlab sample RUN --set prompt="a blond person with glasses" --set guidance=3`;
the byte-level BPE encodes any word (words the captions never used change little). Evaluation adds prompt-following (metrics/prompt_following.py) and the CLIP score.

Sampling: `sampler=ddpm` (ancestral, all T steps by default) or `sampler=ddim` (any number of
`steps`, `eta` 0 = deterministic, 1 = stochastic as in the book), `guidance` for
conditional models. Pictures: sample grid, the reverse process (x_t along the sampling
chain, the book's figure) and the forward process (x_t of held-out images at chosen t).

Fixes over the reference books: the cosine schedule reaches pure noise (the book's offset
cosine, which never does, is only an explicit option), EMA weights are used for sampling,
DDIM starts from t = T-1 ("trailing" spacing) rather than skipping the noisiest steps, and
sampling runs the requested number of steps with the given seed.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.faces import ATTRIBUTES
from ..diffusion import (DDIMSampler, DDPMSampler, NoiseSchedule, diffusion_loss, drop_labels, make_sampler,
                         sample_batches)
from ..diffusion.samplers import SPACINGS
from ..diffusion.schedules import PREDICTIONS, SCHEDULES
from ..diffusion.text import TextCondition, attribute_prompts
from ..diffusion.training import LOSSES
from ..engine.config import TrainConfig
from ..engine.io import write_text
from ..errors import ConfigError, DataError
from ..metrics.prompt_following import attribute_combinations, prompt_following
from ..models.unet import TEXT_PROJECTIONS, UNet, UNetConfig
from ..outputs import Bundle
from .base import SampleOptions
from .image_base import ImageRecipe

VAL_LOSS_SEED = 1234     # timesteps and noise of the held-out loss (fixed: comparable evaluations)
FID_REFERENCE = 1000     # held-out images FID/KID compare the samples with (at most)
DDIM_DEFAULT_STEPS = 50  # sampler=ddim with steps=0
EVAL_SEED = 0            # the noise of the samples evaluation scores (fixed: comparable evaluations)


@dataclass
class DiffusionConfig(TrainConfig):
    # data (see data/image_datasets.py); --data PATH takes an image folder or IDX files
    dataset: str = "faces"            # faces | digits | mnist | fashion-mnist
    image_size: int = 16              # the CPU default; 32 and 64 work (the book preset is 64)
    channels: int = 3                 # 1 (grey) or 3 (RGB)
    n_train: int = 0                  # faces: how many to render (0 = 6000); folders: max images
    val_fraction: float = 0.2         # held-out share (FID/KID reference)
    # U-Net
    unet_channels: list[int] = field(default_factory=lambda: [32, 64, 128])  # widths per level
    blocks: int = 1                   # ResBlocks per level
    attention_resolutions: list[int] = field(default_factory=lambda: [8])  # feature-map sizes with attention
    head_channels: int = 32           # channels per attention head
    groups: int = 8                   # GroupNorm groups
    dropout: float = 0.0              # dropout in the ResBlocks
    # diffusion
    schedule: str = "cosine"          # cosine | linear | offset_cosine (the book's; never pure noise)
    timesteps: int = 1000             # T, noise levels of the forward process
    beta_start: float = 1e-4          # linear schedule only
    beta_end: float = 0.02            # linear schedule only
    prediction: str = "eps"           # eps | x0 | v
    loss: str = "l2"                  # l2 | l1 (book) | huber (Hands-On ML)
    ema_decay: float = 0.999          # decay of the EMA weights used for sampling
    # conditioning (classifier-free guidance)
    conditional: bool = False         # learn p(x | label) for classifier-free guidance
    attribute: str = "glasses"        # faces: the attribute to condition on; other data: class labels
    p_uncond: float = 0.1             # label (or text) dropout during training
    text_encoder: str = ""            # a trained clip run: condition on captions through its text encoder
                                      # (pooled embedding; faces only; copied into this run)
    text_projection: str = "linear"   # text conditioning: linear (N(0,1) init, like a class embedding) | mlp
    captions_per_image: int = 4       # text conditioning: caption phrasings per face (one drawn per step)
    eval_prompt_samples: int = 8      # text conditioning: images per glasses x blond x smiling prompt (evaluate)
    # evaluation: FID/KID/precision/recall of DDIM samples vs held-out images
    eval_samples: int = 256           # DDIM samples scored at evaluation
    eval_steps: int = 50              # their DDIM steps
    eval_guidance: float = 3.0        # their guidance scale (conditional models)
    # training defaults for 2 CPU cores
    max_steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    grad_clip: float = 1.0
    eval_every: int = 0
    save_every: int = 500
    log_every: int = 25
    saved_defaults = {"text_projection": "mlp"}   # text runs saved before the linear projection
    bounds = {"unet_channels": "[1, inf)", "attention_resolutions": "[1, inf)", "head_channels": "[1, inf)",
              "groups": "[1, inf)", "beta_start": "(0, 1)", "beta_end": "(0, 1)", "image_size": "[4, inf)",
              "channels": "[1, 3]"}

    def check(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"invalid config: schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.prediction not in PREDICTIONS:
            raise ConfigError(f"invalid config: prediction must be one of {', '.join(PREDICTIONS)}, "
                              f"got {self.prediction!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"invalid config: loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.timesteps < 2:
            raise ConfigError("invalid config: timesteps must be >= 2")
        if not self.unet_channels:
            raise ConfigError("invalid config: unet_channels must list at least one width")
        if self.image_size % 2 ** (len(self.unet_channels) - 1):
            raise ConfigError(f"invalid config: image_size {self.image_size} must be divisible by "
                              f"2^{len(self.unet_channels) - 1} for {len(self.unet_channels)} U-Net levels")
        if self.blocks < 1:
            raise ConfigError("invalid config: blocks must be >= 1")
        if not 0.0 <= self.p_uncond < 1.0:
            raise ConfigError("invalid config: p_uncond must be in [0, 1)")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError("invalid config: ema_decay must be in [0, 1)")
        if self.text_encoder and self.conditional:
            raise ConfigError("invalid config: text_encoder=... and conditional=true exclude each other "
                              "(a text model is conditional already)")
        if self.text_projection not in TEXT_PROJECTIONS:
            raise ConfigError(f"invalid config: text_projection must be one of {', '.join(TEXT_PROJECTIONS)}, "
                              f"got {self.text_projection!r}")
        if self.captions_per_image < 1 or self.eval_prompt_samples < 1:
            raise ConfigError("invalid config: captions_per_image and eval_prompt_samples must be >= 1")
        if self.eval_samples < 4:
            raise ConfigError("invalid config: eval_samples must be >= 4")
        if not 1 <= self.eval_steps <= self.timesteps:
            raise ConfigError(f"invalid config: eval_steps must be in [1, timesteps={self.timesteps}]")


@dataclass
class DiffusionSample(SampleOptions):
    n: int = 16
    seed: int = 0
    sampler: str = "ddim"             # ddim | ddpm
    steps: int = 0                    # 0 = the sampler's default: ddim 50, ddpm all T (fewer = respaced)
    eta: float = 1.0                  # ddim: 1 = DDPM-like noise (the book), 0 = deterministic (needs a
                                      # better-trained model: see BENCHMARKS.md)
    spacing: str = "trailing"         # trailing (starts at T-1) | leading | linspace
    guidance: float = 3.0             # conditional models: guidance scale, 1 = conditional, 0 = unconditional
    label: str = ""                   # conditional models: class name or index; "" = cycle through all
    prompt: str = ""                  # text models: what to draw; "" = a fresh phrasing of each
                                      # glasses x blond x smiling combination in turn
    clip: bool = True                 # clip predicted x_0 to [-1, 1] at each step
    ema: bool = True                  # sample with the EMA weights
    strip: int = 8                    # columns of the forward / reverse process strips (0 = none)
    strip_rows: int = 4               # rows of the forward / reverse process strips

    def check(self) -> None:
        if self.sampler not in ("ddim", "ddpm"):
            raise ConfigError(f"invalid sample option: sampler must be ddim or ddpm, got {self.sampler!r}")
        if self.steps < 0:
            raise ConfigError(f"invalid sample option: steps must be >= 0 (got {self.steps})")
        if self.eta < 0:
            raise ConfigError("invalid sample option: eta must be >= 0")
        if self.spacing not in SPACINGS:
            raise ConfigError(f"invalid sample option: spacing must be one of {', '.join(SPACINGS)}")
        if self.n < 1:
            raise ConfigError("invalid sample option: n must be >= 1")


class DiffusionRecipe(ImageRecipe):
    name = "diffusion"
    Config = DiffusionConfig
    Sample = DiffusionSample
    ema_of = {"ema": "unet"}
    presets = {
        # 64x64, U-Net widths 128/256/512/1024, ~134M parameters: a GPU setting.
        "book": {"image_size": 64, "unet_channels": [128, 256, 512, 1024], "blocks": 1,
                 "attention_resolutions": [16, 8], "head_channels": 64, "groups": 32, "timesteps": 1000,
                 "schedule": "linear", "loss": "l1", "batch_size": 64, "lr": 1e-4, "max_steps": 100000,
                 "ema_decay": 0.9999, "warmup_steps": 1000, "save_every": 5000},
        # Hands-On ML: cosine schedule with T=4000 and the Huber loss.
        "handson": {"timesteps": 4000, "schedule": "cosine", "loss": "huber"},
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        c = self.config
        self.schedule = NoiseSchedule(c.schedule, c.timesteps, c.beta_start, c.beta_end)
        self.class_names: list[str] = []
        self.text: TextCondition | None = None  # text models: the frozen CLIP (text side conditions)
        self.train_text: torch.Tensor | None = None   # (captions_per_image, N train, D) caption embeddings

    # -- data -------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        c = self.config
        d = self.load_images()
        self.train_x, self.val_x = d.train, d.val
        if c.conditional:
            self.train_y, self.val_y, self.class_names = d.classes(c.attribute)
            if len(self.class_names) < 2:
                raise DataError("conditional=true needs labelled data: an image folder with one sub-folder per class")
        if c.text_encoder:
            if d.domain != "faces":
                raise ConfigError("text_encoder=... needs the procedural faces (their captions); no --data")
            if self.text is None:      # a new run; resumed and loaded runs read their own copy
                self.text = TextCondition.from_clip_run(c.text_encoder)
            self.text.check_channels(c.channels)
        self.train_x_dev = self.train_x.to(self.device)

    def caption_embeddings(self) -> torch.Tensor:
        """(captions_per_image, N train, D): the pooled text embedding of each phrasing of each
        training face (the faces are the first N of seed 0)."""
        if self.train_text is None:
            self.train_text = self.text.caption_embeddings(np.arange(len(self.train_x)), self.config.captions_per_image)
        return self.train_text

    def embed(self, texts: list[str]) -> torch.Tensor:
        return self.text.embed(texts)

    def save_artifacts(self, run_dir: Path) -> None:
        write_text(Path(run_dir) / "classes.json", json.dumps({"class_names": self.class_names,
                                                                "domain": getattr(self, "domain", "")}))
        if self.text is not None:
            self.text.save(run_dir)

    def load_artifacts(self, run_dir: Path) -> None:
        path = Path(run_dir) / "classes.json"
        if path.is_file():
            meta = json.loads(path.read_text(encoding="utf-8"))
            self.class_names = list(meta.get("class_names", []))
            if meta.get("domain"):
                self.domain = meta["domain"]
        if self.config.text_encoder:
            self.text = TextCondition.load(run_dir)

    # -- model ------------------------------------------------------------------------------------
    def unet_config(self) -> UNetConfig:
        c = self.config
        return UNetConfig(image_size=c.image_size, in_channels=c.channels, channels=tuple(c.unet_channels),
                          blocks=c.blocks, attention_resolutions=tuple(c.attention_resolutions),
                          head_channels=c.head_channels, groups=c.groups, dropout=c.dropout,
                          num_classes=len(self.class_names) if c.conditional else 0,
                          text_dim=self.text.dim if c.text_encoder else 0, text_projection=c.text_projection)

    def build_modules(self) -> dict[str, nn.Module]:
        if self.config.conditional and not self.class_names:
            raise DataError("conditional model without class names (classes.json missing from the run directory)")
        torch.manual_seed(self.config.seed)
        return self.with_ema({"unet": UNet(self.unet_config())})

    @property
    def null(self) -> int | torch.Tensor:
        """The condition classifier-free guidance drops to: the null class, or a zero text embedding."""
        if self.config.text_encoder:
            return self.text.null
        return len(self.class_names)

    # -- training -----------------------------------------------------------------------------------
    def batch(self, index: int) -> dict[str, torch.Tensor]:
        c = self.config
        idx = self.batch_indices(index, len(self.train_x))   # this rank's rows
        g = self.step_rng(index)
        # Draw the whole global batch's randomness, then keep this rank's share (DDP == single process).
        t = self.shard(torch.randint(0, c.timesteps, (c.batch_size,), generator=g))
        noise = self.shard(torch.randn(c.batch_size, c.channels, c.image_size, c.image_size, generator=g))
        out = {"x0": self.train_x_dev[idx.to(self.device)], "t": t.to(self.device), "noise": noise.to(self.device)}
        if c.conditional:
            y = drop_labels(self.train_y[idx], c.p_uncond, self.null, self.step_rng(index, stream=1))
            out["y"] = y.to(self.device)
        elif c.text_encoder:
            text = self.caption_embeddings()
            variant = torch.randint(0, len(text), (len(idx),), generator=self.step_rng(index, stream=2))
            y = drop_labels(text[variant, idx], c.p_uncond, self.null, self.step_rng(index, stream=1))
            out["y"] = y.to(self.device)
        return out

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        c = self.config
        x0, t, noise = batch["x0"], batch["t"], batch["noise"]
        x_t = self.schedule.add_noise(x0, noise, t)
        with self.autocast():
            out = self.train_modules["unet"](x_t, t, batch.get("y"))
        loss = diffusion_loss(out, self.schedule.target(c.prediction, x0, noise, t), c.loss)
        self.optimize("model", loss)
        if self.is_last_micro_batch:   # the optimizer stepped: move the average
            self.update_ema(step)
        return {"loss": loss.item()}

    # -- sampling ------------------------------------------------------------------------------------
    def _model(self, opts: DiffusionSample) -> nn.Module:
        return self.modules["ema" if opts.ema else "unet"]

    def make_sampler(self, opts: DiffusionSample) -> DDPMSampler | DDIMSampler:
        return make_sampler(opts.sampler, self.schedule, self.config.prediction, opts.steps, opts.eta, opts.spacing,
                            opts.clip, ddim_steps=DDIM_DEFAULT_STEPS)

    def prompts_for(self, opts: DiffusionSample, n: int) -> list[str]:
        """Text models: the prompt of each of n samples (opts.prompt, or a fresh phrasing of each
        glasses x blond x smiling combination in turn)."""
        return self.text.prompts(opts.prompt, n, opts.seed)

    def labels_for(self, opts: DiffusionSample, n: int) -> torch.Tensor | None:
        """The requested label (text models: prompt embedding) for each of n samples (None for
        unconditional models)."""
        if self.config.text_encoder:
            if opts.label:
                raise ConfigError("a text model takes prompt=..., not label=...")
            return self.embed(self.prompts_for(opts, n))
        if opts.prompt:
            raise ConfigError("prompt=... needs a text model (train with text_encoder=A_CLIP_RUN)")
        if not self.config.conditional:
            if opts.label:
                raise ConfigError("label=... needs a conditional model (train with conditional=true)")
            return None
        k = len(self.class_names)
        if not opts.label:
            return torch.arange(n) % k
        if opts.label in self.class_names:
            return torch.full((n,), self.class_names.index(opts.label))
        if opts.label.lstrip("-").isdigit() and 0 <= int(opts.label) < k:
            return torch.full((n,), int(opts.label))
        raise ConfigError(f"invalid sample option: label must be a class name ({', '.join(self.class_names)}) "
                          f"or an index in [0, {k})")

    @torch.no_grad()
    def sample_images(self, opts: DiffusionSample, labels: torch.Tensor | None = None, keep: tuple[int, ...] = (),
                      batch_size: int = 256) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """(n, C, H, W) samples in [-1, 1] and the kept intermediate x_t (first batch only)."""
        c = self.config
        opts.check()
        if labels is None:
            labels = self.labels_for(opts, opts.n)
        shape = (c.channels, c.image_size, c.image_size)
        return sample_batches(self._model(opts), self.make_sampler(opts), opts.n, shape,
                              torch.Generator().manual_seed(opts.seed), labels, opts.guidance, self.null, keep,
                              batch_size, self.device, self.autocast)

    def generate(self, opts: DiffusionSample) -> Bundle:
        """The samples (captioned with their requested labels), and with `strip` > 1 the reverse
        process (x_t along the sampling chain, noisiest left, then the sample) and the forward
        process (held-out images noised at evenly spaced t)."""
        k = len(self.class_names)
        labels = self.labels_for(opts, opts.n)
        ncol = k * max(1, round(math.sqrt(opts.n) / k)) if k and labels is not None and not opts.label \
            else max(1, round(math.sqrt(opts.n)))
        ts = self.make_sampler(opts).timesteps.tolist()
        cols = min(opts.strip, len(ts)) if opts.strip > 0 else 0
        keep = tuple(ts[round(i * (len(ts) - 1) / max(cols - 1, 1))] for i in range(cols - 1)) if cols > 1 else ()
        images, kept = self.sample_images(opts, labels, keep=keep)
        steps = opts.steps or len(ts)
        how = f"{opts.sampler}, {steps} steps" + (f", guidance {opts.guidance:g}" if labels is not None else "")
        if self.config.text_encoder:
            captions, what = self.prompts_for(opts, opts.n), "prompt"
        else:
            captions, what = [self.class_names[int(y)] for y in labels] if labels is not None else [], "class"
        title = f"diffusion samples ({how})" + (f"; under each: the requested {what}" if captions else "")
        parts = {"samples": self.picture(images, ncol=ncol, labels=captions, title=title)}
        if cols > 1:
            rows = min(opts.strip_rows, opts.n)
            strip = torch.stack([kept[t][:rows] for t in keep] + [images[:rows]], dim=1)
            parts["reverse_process"] = self.picture(strip.flatten(0, 1), ncol=cols, name="reverse_process",
                                                    col_labels=[f"t={t}" for t in keep] + ["sample"],
                                                    title="reverse process: x_t along the sampling chain")
            parts["forward_process"] = self.forward_strip(images[:rows], cols, opts.seed)
        return Bundle(parts)

    def forward_strip(self, fallback: torch.Tensor, cols: int, seed: int) -> Any:
        """x_t of held-out images (generated ones if the data is unavailable) at evenly spaced t."""
        try:
            self.load_data_once()
            x0 = self.val_x[:len(fallback)]
        except (DataError, ConfigError):
            x0 = fallback
        T = self.config.timesteps
        ts = [round(i * (T - 1) / (cols - 1)) for i in range(cols)]
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
        strip = torch.stack([self.schedule.add_noise(x0, noise, torch.full((len(x0),), t)) for t in ts], dim=1)
        return self.picture(strip.flatten(0, 1), ncol=cols, name="forward_process", col_labels=[f"t={t}" for t in ts],
                            title="forward process: held-out images noised to x_t")

    # -- evaluation ------------------------------------------------------------------------------------
    def sample_quality(self, opts: DiffusionSample, n: int | None = None) -> dict[str, float]:
        """FID/KID/precision/recall of n samples vs held-out images, the requested-label
        accuracy for conditional models, and seconds per image."""
        self.load_data_once()
        c = self.config
        opts.n = n or c.eval_samples
        labels = self.labels_for(opts, opts.n)
        t0 = time.time()
        fake, _ = self.sample_images(opts, labels)
        sec = (time.time() - t0) / opts.n
        out = self.quality(self.val_x[:FID_REFERENCE], fake, other_real=self.train_x)
        out["sec_per_image"] = sec
        if labels is not None and not c.text_encoder:
            out.update(self.label_accuracy(fake, labels))
        return out

    def prompt_following(self, n_per: int, guidance: float, seed: int = EVAL_SEED, steps: int = 50
                         ) -> dict[str, float]:
        """Faces: for each glasses x blond x smiling combination, n_per samples asked for it, and the
        share the attribute judge sees as asked, per attribute and all at once. Text models get a
        fresh phrasing per sample (and the CLIP score), class-conditional ones their attribute's
        label (the others left to chance), unconditional ones nothing (chance everywhere)."""
        c = self.config
        if self.domain != "faces":
            raise ConfigError("prompt-following is measured on the procedural faces only")
        wanted = attribute_combinations(n_per)
        opts = DiffusionSample(n=len(wanted), seed=seed, steps=steps, eta=1.0, guidance=guidance, strip=0)
        prompts: list[str] = []
        if c.text_encoder:
            prompts = attribute_prompts(wanted, np.random.default_rng(seed))
            cond = self.embed(prompts)
        elif c.conditional:
            cond = torch.from_numpy(wanted[:, ATTRIBUTES.index(c.attribute)]).long()
        else:
            cond = None
        images, _ = self.sample_images(opts, cond)
        out = prompt_following(images, wanted, self.attribute_classifier())
        if prompts:
            out["clip_score"] = self.text.score(images, prompts)
        return out

    def label_accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """{"label_accuracy": share of samples whose label, as a classifier judges it, is the
        requested one}: for faces the attribute judge, which counts a non-face as a failure
        (and adds "face_rate"); for labelled classes the domain's feature net."""
        c = self.config
        if self.domain == "faces":
            s = self.attribute_score(images, c.attribute, labels.numpy())
            return {"label_accuracy": s["attribute_acc"], "face_rate": s["face_rate"]}
        net = self.feature_net()
        if net.heads.kind != "classes" or len(net.heads.classes) != len(self.class_names):
            return {"label_accuracy": float("nan")}
        pred = net.logits(images).argmax(-1)
        return {"label_accuracy": float((pred == labels).float().mean())}

    @torch.no_grad()
    def val_loss(self, n: int = 256) -> float:
        """The training loss on held-out images at fixed timesteps and noise (EMA weights)."""
        c = self.config
        x0 = self.val_x[:n].to(self.device)
        g = torch.Generator().manual_seed(VAL_LOSS_SEED)
        t = torch.randint(0, c.timesteps, (len(x0),), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        y = None
        if c.conditional:
            y = self.val_y[:n].to(self.device)
        elif c.text_encoder:   # the held-out faces follow the training ones
            start = len(self.train_x)
            y = self.text.caption_embeddings(np.arange(start, start + len(x0)), 1)[0].to(self.device)
        with self.autocast():
            out = self.modules["ema"](self.schedule.add_noise(x0, noise, t), t, y)
        return diffusion_loss(out, self.schedule.target(c.prediction, x0, noise, t), c.loss).item()

    def evaluate(self) -> dict[str, float]:
        self.load_data_once()
        c = self.config
        opts = DiffusionSample(n=c.eval_samples, seed=EVAL_SEED, sampler="ddim", steps=c.eval_steps, eta=1.0,
                               guidance=c.eval_guidance, strip=0)
        out = {"val_loss": self.val_loss(), **self.sample_quality(opts)}
        if c.text_encoder:
            out.update(self.prompt_following(c.eval_prompt_samples, c.eval_guidance, steps=c.eval_steps))
        return out

