"""CLIP: a small image CNN and a text Transformer trained contrastively on captioned images.

Data: the procedural faces with captions written from their drawing parameters
(data/captions.py, `captions_per_image` phrasings of each face, one drawn per step), or with
`--data DIR` a folder of images with captions: a `captions.tsv` at its top
(`relative/path.png<TAB>caption` per line) or `NAME.txt` beside each `NAME.png`.
The text vocabulary is a byte-level BPE trained on the training captions with Hugging Face
`tokenizers` (saved as the run's tokenizer.json): any word can be encoded, unseen ones as pieces.

Training: the symmetric contrastive loss of models/clip.py over the batch, with the learned
temperature (logit scale, clamped at 100 as in CLIP). On faces a share `twins` of each batch is
the twins of other faces in it: the same face with one attribute switched, a hard negative only
that attribute tells apart (one of the three changes with which the smile, a few pixels at 16 px,
was learned; BENCHMARKS.md, text to image).

Evaluation on held-out pairs: zero-shot attribute accuracy (faces: for each of glasses / blond /
smiling, the averaged embeddings of prompt wordings for "absent" and "present", scored against the
true attributes and against the attribute judge's labels), image->text and text->image retrieval
recall@1/@5 among `eval_pairs` held-out pairs, and the contrastive loss.

`genlab sample RUN --set prompt="a blond person with glasses"` ranks held-out images by their
similarity to the prompt: the top `n`, each captioned with its cosine similarity.

A diffusion run conditions on this model's text encoder with `--set text_encoder=THIS_RUN`.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.captions import attribute_prompts, face_captions, load_captioned_folder
from ..data.faces import ATTRIBUTES, render_faces
from ..data.image_datasets import DEFAULT_FACES, load_faces_tensors, n_held_out
from ..data.images import set_channels, to_tensor
from ..engine.config import TrainConfig
from ..errors import ConfigError
from ..models.clip import CLIP, POOLS, CLIPConfig, clip_loss, embed_images, embed_texts, tokenize
from ..outputs import Images
from ..tokenizers import BPETokenizer, Tokenizer, load_tokenizer
from .base import SampleOptions
from .image_base import ImageRecipe


TWIN_STREAM = 4242   # the random stream choosing which attribute each face's twin switches


@dataclass
class CLIPTrainConfig(TrainConfig):
    saved_defaults = {"image_pool": "mean"}   # runs saved before the flatten readout
    # data: procedural faces with generated captions, or --data a captioned image folder
    image_size: int = 16              # side of the square images (px)
    channels: int = 3                 # 1 (grey) or 3 (RGB)
    n_train: int = 0                  # faces rendered (0 = 6000); folders: max images (0 = all)
    val_fraction: float = 0.1         # held-out share (evaluation pairs)
    captions_per_image: int = 4       # faces: phrasings per face (one drawn per step)
    twins: float = 0.25               # faces: share of each batch that is twins of other faces in it
                                      # (the same face with one attribute switched: hard negatives)
    vocab_size: int = 512             # BPE vocabulary (>= 257: the 256 bytes + <eos>)
    # model (models/clip.py)
    image_width: int = 32             # channels of the image CNN's first stage
    image_pool: str = "flatten"       # flatten (a linear map of the final 4x4 map) | mean (global average)
    context: int = 48                 # tokens per caption, <eos> included
    text_width: int = 96              # Transformer width
    text_layers: int = 2              # Transformer layers
    text_heads: int = 4               # attention heads
    embed_dim: int = 64               # joint embedding size
    # evaluation
    eval_pairs: int = 200             # held-out pairs for retrieval recall@1/@5
    # training defaults for 2 CPU cores
    max_steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05        # AdamW (not on the logit scale, norms or biases)
    grad_clip: float = 1.0
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    eval_every: int = 0
    save_every: int = 500
    log_every: int = 25
    bounds = {"image_width": "[1, inf)", "text_width": "[1, inf)", "text_layers": "[1, inf)",
              "text_heads": "[1, inf)", "embed_dim": "[1, inf)"}

    def check(self) -> None:
        if self.channels not in (1, 3) or self.image_size < 8:
            raise ConfigError("invalid config: need channels 1 or 3 and image_size >= 8")
        if self.vocab_size < 257:
            raise ConfigError("invalid config: vocab_size must be >= 257 (256 bytes + <eos>)")
        if not 0.0 <= self.twins <= 0.5:
            raise ConfigError("invalid config: twins must be in [0, 0.5] (a twin needs its face in the batch)")
        if self.captions_per_image < 1 or self.eval_pairs < 5:
            raise ConfigError("invalid config: need captions_per_image >= 1 and eval_pairs >= 5")
        for key in ("image_width", "text_width", "text_layers", "text_heads", "embed_dim"):
            if getattr(self, key) < 1:
                raise ConfigError(f"invalid config: {key} must be >= 1")
        if self.image_pool not in POOLS:
            raise ConfigError(f"invalid config: image_pool must be one of {', '.join(POOLS)}, got {self.image_pool!r}")
        if self.image_width % 8:
            raise ConfigError("invalid config: image_width must be a multiple of 8 (GroupNorm groups)")
        if self.n_train < 0 or not 0.0 < self.val_fraction < 1.0:
            raise ConfigError("invalid config: need n_train >= 0 and val_fraction in (0, 1)")
        if self.text_width % self.text_heads:
            raise ConfigError("invalid config: text_width must be divisible by text_heads")
        if self.context < 4:
            raise ConfigError("invalid config: context must be >= 4")

    def model_config(self, vocab_size: int) -> CLIPConfig:
        return CLIPConfig(image_size=self.image_size, channels=self.channels, image_width=self.image_width,
                          image_pool=self.image_pool, vocab_size=vocab_size, context=self.context,
                          text_width=self.text_width, text_layers=self.text_layers, text_heads=self.text_heads,
                          embed_dim=self.embed_dim)


@dataclass
class CLIPSample(SampleOptions):
    n: int = 16
    prompt: str = "a smiling person with glasses"   # held-out images are ranked by similarity to it

    def check(self) -> None:
        if self.n < 1:
            raise ConfigError("invalid sample option: n must be >= 1")
        if not self.prompt.strip():
            raise ConfigError("invalid sample option: prompt must not be empty")


class CLIPRecipe(ImageRecipe):
    name = "clip"
    Config = CLIPTrainConfig
    Sample = CLIPSample

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tokenizer: Tokenizer | None = None
        self.twin_x: torch.Tensor | None = None          # faces: each training face's twin (render_twins)
        self.twin_captions: list[list[str]] = []

    # -- data ---------------------------------------------------------------------------------------
    def show_data(self, n: int | None = None) -> Images:
        """The first n training images (16 by default) captioned with their first phrasing."""
        self.load_data_once()
        n = min(n or 16, len(self.train_x))
        return self.picture(self.train_x[:n], labels=[textwrap.fill(t, 28) for t in self.train_captions[0][:n]], ncol=4,
                            name="data", title=f"clip: {n} of {len(self.train_x)} training images with their captions")

    def prepare_data(self) -> None:
        """Images in [-1, 1] and captions: train_captions[v][i] is phrasing v of train image i."""
        c = self.config
        if c.data:
            images, captions = load_captioned_folder(c.data, c.image_size, c.channels, c.n_train)
            x = to_tensor(images)
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(c.seed))
            k = n_held_out(len(x), c.val_fraction)
            val, train = perm[:k].tolist(), perm[k:].tolist()
            self.train_x, self.val_x = x[train], x[val]
            self.train_captions = [[captions[i] for i in train]]
            self.val_captions = [captions[i] for i in val]
            self.val_y = None
            self.domain = str(c.data)
        else:
            n = c.n_train or DEFAULT_FACES
            x, y = load_faces_tensors(n, c.image_size, c.channels)
            k = n_held_out(n, c.val_fraction)
            self.train_x, self.val_x, self.val_y = x[:-k], x[-k:], y[-k:]
            idx = np.arange(n)
            self.train_captions = [face_captions(idx[:-k], variant=v) for v in range(c.captions_per_image)]
            self.val_captions = face_captions(idx[-k:], variant=0)
            self.domain = "faces"
            if c.twins:
                self.twin_x, self.twin_captions = self.render_twins(idx[:-k], y[:-k].numpy())
        self.train_x = set_channels(self.train_x, c.channels)
        self.val_x = set_channels(self.val_x, c.channels)
        if self.tokenizer is None:   # a resumed or loaded run keeps its saved tokenizer
            text = "\n".join(t for phrasings in self.train_captions for t in phrasings)
            self.tokenizer = BPETokenizer.fit(text, vocab_size=c.vocab_size, min_frequency=2)

    def render_twins(self, idx: np.ndarray, attrs: np.ndarray) -> tuple[torch.Tensor, list[list[str]]]:
        """Each training face again with one attribute (drawn per face) switched, everything else
        kept, and its captions with the same draws of what to name: a pair in one batch that only
        that attribute tells apart (see BENCHMARKS.md, text to image, for what it changed)."""
        c = self.config
        which = np.random.default_rng([c.seed, TWIN_STREAM]).integers(0, len(ATTRIBUTES), len(idx))
        x = torch.empty(len(idx), 3, c.image_size, c.image_size)
        captions = [[""] * len(idx) for _ in range(c.captions_per_image)]
        for k, name in enumerate(ATTRIBUTES):
            rows = np.flatnonzero(which == k)
            switched = {name: 1 - attrs[rows, k]}
            images, _ = render_faces(idx[rows], size=c.image_size, attributes=switched)
            x[rows] = to_tensor(images)
            for v in range(c.captions_per_image):
                for r, text in zip(rows, face_captions(idx[rows], variant=v, attributes=switched)):
                    captions[v][r] = text
        return set_channels(x, c.channels), captions

    def save_artifacts(self, run_dir: Path) -> None:
        self.tokenizer.save(run_dir)

    def load_artifacts(self, run_dir: Path) -> None:
        self.tokenizer = load_tokenizer(run_dir)

    # -- model ----------------------------------------------------------------------------------------
    def build_modules(self) -> dict[str, nn.Module]:
        torch.manual_seed(self.config.seed)
        return {"clip": CLIP(self.config.model_config(self.tokenizer.vocab_size))}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        decay, no_decay = [], []
        for name, p in self.modules["clip"].named_parameters():
            (decay if p.ndim >= 2 and name != "text.pos" else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": self.config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return {"model": torch.optim.AdamW(groups, lr=self.config.lr)}

    def tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, lengths = tokenize(self.tokenizer, texts, self.config.context)
        return ids.to(self.device), lengths.to(self.device)

    # -- training ----------------------------------------------------------------------------------------
    def batch(self, index: int) -> dict[str, Any]:
        """Training pairs; with twins, the last `twins` share of the rows are replaced by the twins
        of the first ones (with the same phrasing variant)."""
        idx = self.batch_indices(index, len(self.train_x))
        variant = torch.randint(0, len(self.train_captions), (len(idx),), generator=self.step_rng(index, stream=1))
        texts = [self.train_captions[int(v)][int(i)] for v, i in zip(variant, idx)]
        x = self.train_x[idx]
        m = int(self.config.twins * len(idx)) if self.twin_x is not None else 0
        if m:
            keep = len(idx) - m
            x = torch.cat([x[:keep], self.twin_x[idx[:m]]])
            texts = texts[:keep] + [self.twin_captions[int(v)][int(i)] for v, i in zip(variant[:m], idx[:m])]
        ids, lengths = self.tokens(texts)
        return {"x": x.to(self.device), "ids": ids, "lengths": lengths}

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        with self.autocast():
            loss = self.train_modules["clip"](batch["x"], batch["ids"], batch["lengths"])
        self.optimize("model", loss)
        return {"loss": loss.item(), "logit_scale": self.modules["clip"].scale().detach().item()}

    # -- embeddings ---------------------------------------------------------------------------------------
    def image_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        return embed_images(self.modules["clip"], x)

    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        return embed_texts(self.modules["clip"], self.tokenizer, texts)

    def zero_shot(self, image_emb: torch.Tensor, attribute: str) -> np.ndarray:
        """0/1 per image: is `attribute` present, by the nearer of the two averaged prompt sets."""
        absent, present = attribute_prompts(attribute)
        centres = torch.stack([torch.nn.functional.normalize(self.text_embeddings(p).mean(0), dim=0)
                               for p in (absent, present)])
        return (image_emb @ centres.t()).argmax(-1).numpy()

    # -- evaluation ---------------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        self.load_data_once()
        c = self.config
        n = min(c.eval_pairs, len(self.val_x))
        img = self.image_embeddings(self.val_x[:n])
        txt = self.text_embeddings(self.val_captions[:n])
        out = {"val_loss": float(clip_loss(img, txt, self.modules["clip"].scale().cpu()))}
        sim = img @ txt.t()
        target = torch.arange(n)
        for name, s in (("image_to_text", sim), ("text_to_image", sim.t())):
            rank = (s > s[target, target][:, None]).sum(1)      # how many score above the true pair
            out[f"{name}_r1"] = float((rank < 1).float().mean())
            out[f"{name}_r5"] = float((rank < 5).float().mean())
        if self.domain == "faces":
            out.update(self.zero_shot_accuracy())
        return out

    def zero_shot_accuracy(self) -> dict[str, float]:
        """Zero-shot attribute accuracy on all held-out faces, against their true attributes and
        against the attribute judge's labels; `zero_shot_mean` averages the true-label ones."""
        emb = self.image_embeddings(self.val_x)
        judge = self.attribute_classifier().predict(self.val_x)
        out = {}
        for k, a in enumerate(ATTRIBUTES):
            pred = self.zero_shot(emb, a)
            out[f"zero_shot_{a}"] = float((pred == self.val_y[:, k].numpy()).mean())
            out[f"zero_shot_{a}_vs_judge"] = float((pred == judge[:, k]).mean())
        out["zero_shot_mean"] = float(np.mean([out[f"zero_shot_{a}"] for a in ATTRIBUTES]))
        return out

    # -- sampling ------------------------------------------------------------------------------------------
    def generate(self, opts: CLIPSample) -> Images:
        """The held-out images most similar to the prompt, best first, captioned with their cosine."""
        opts.check()
        self.load_data_once()
        sim = (self.image_embeddings(self.val_x) @ self.text_embeddings([opts.prompt])[0])
        top = sim.argsort(descending=True)[:opts.n]
        return self.picture(self.val_x[top], name="retrieval", labels=[f"{float(sim[i]):.3f}" for i in top],
                            title=f'held-out images nearest to "{opts.prompt}" (cosine under each)')
