"""Image classifiers: the book's MLPs (multi-class and binary) and a small CNN.

Default data: scikit-learn's bundled 8x8 digits, upscaled to 28x28 so the book's
784-256-128-64-10 MLP applies unchanged. With --data: a folder of IDX files (MNIST,
Fashion-MNIST) or an image folder labelled by sub-folder. The trained CNN is also the
feature network of genlab's image metrics.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data.image_datasets import load_image_dataset
from ..engine.config import TrainConfig
from ..errors import ConfigError, DataError
from ..models.classifier import ClassifierConfig, build_classifier
from ..outputs import Bundle, Images, Points
from .base import Recipe, SampleOptions


@dataclass
class Config(TrainConfig):
    arch: str = "cnn"                    # cnn | mlp
    dataset: str = "digits"              # digits (embedded) | mnist (../shared) | fashion-mnist (Debian's package)
    image_size: int = 28                 # side of the square images (px)
    channels: int = 1                    # 1 (grey) or 3 (RGB)
    hidden: list[int] = field(default_factory=lambda: [256, 128, 64])   # MLP hidden layers
    dropout: float = 0.0                 # MLP dropout between hidden layers
    width: int = 16                      # CNN width (channels of the first block)
    classes: str = ""                    # keep only these labels, e.g. "0,9"; two classes -> binary (one logit)
    val_fraction: float = 0.2            # held-out share (IDX: the last images; others: a seeded draw)
    max_steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    eval_every: int = 250
    save_every: int = 500
    early_stop_metric: str = "accuracy"
    early_stop_mode: str = "max"
    bounds = {"hidden": "[1, inf)", "width": "[1, inf)"}

    def check(self) -> None:
        if self.arch not in ("cnn", "mlp"):
            raise ConfigError(f"invalid config: arch must be cnn or mlp, got {self.arch!r}")
        if self.dataset not in ("digits", "mnist", "fashion-mnist"):
            raise ConfigError(f"invalid config: dataset must be digits, mnist or fashion-mnist, got {self.dataset!r}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError("invalid config: val_fraction must lie in (0, 1)")
        if self.channels not in (1, 3):
            raise ConfigError("invalid config: channels must be 1 or 3")
        if self.image_size < 8:
            raise ConfigError("invalid config: image_size must be >= 8")
        self.class_list()

    def class_list(self) -> list[int]:
        try:
            return [int(c) for c in self.classes.split(",") if c.strip()]
        except ValueError:
            raise ConfigError(f"invalid config: classes must be integers like '0,9', got {self.classes!r}") from None


PICTURE_COLUMNS = 8      # images per row of the predictions picture


@dataclass
class Sample(SampleOptions):
    n: int = 32


class ClassifierRecipe(Recipe):
    name = "classifier"
    Config = Config
    Sample = Sample
    presets = {
        "book": {"arch": "mlp", "hidden": [256, 128, 64], "dataset": "fashion-mnist", "lr": 1e-3,
                 "batch_size": 64, "max_steps": 9000},
        "book-binary": {"arch": "mlp", "hidden": [256, 128, 32], "dropout": 0.25, "classes": "0,9",
                        "dataset": "fashion-mnist", "lr": 1e-3, "batch_size": 64, "max_steps": 3000},
    }

    def _model_config(self) -> ClassifierConfig:
        c = self.config
        n_classes = len(c.class_list()) or getattr(self, "num_classes", 0) or 10
        return ClassifierConfig(arch=c.arch, in_channels=c.channels, image_size=c.image_size,
                                num_classes=1 if n_classes == 2 else n_classes, hidden=tuple(c.hidden),
                                dropout=c.dropout, width=c.width)

    def build_modules(self) -> dict[str, nn.Module]:
        torch.manual_seed(self.config.seed)
        return {"model": build_classifier(self._model_config())}

    # -- data -------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        c = self.config
        d = load_image_dataset(c)
        if d.multi_label:
            raise DataError("the classifier needs one label per image (an image folder, IDX files or digits)")
        x, y, vx, vy = d.train, d.train_labels, d.val, d.val_labels
        keep = c.class_list()
        if keep:  # e.g. the book's binary t-shirt (0) vs ankle boot (9) classifier
            remap = torch.full((int(max(y.max(), vy.max())) + 1,), -1, dtype=torch.long)
            remap[torch.tensor(keep)] = torch.arange(len(keep))
            x, y = x[remap[y] >= 0], remap[y][remap[y] >= 0]
            vx, vy = vx[remap[vy] >= 0], remap[vy][remap[vy] >= 0]
        if len(x) == 0 or len(vx) == 0:
            raise DataError("no training or held-out images left (check classes= and the data)")
        self.num_classes = int(max(y.max(), vy.max())) + 1
        self.label_names = d.label_names
        self.x, self.y, self.vx, self.vy = x, y, vx, vy

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.batch_indices(index, len(self.x))
        return self.x[idx].to(self.device), self.y[idx].to(self.device)

    # -- training and evaluation --------------------------------------------------------------------
    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if logits.shape[-1] == 1:  # binary: one logit, BCE (sigmoid lives in the loss, not the model)
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), y.float())
        return F.cross_entropy(logits, y)

    @staticmethod
    def _predict(logits: torch.Tensor) -> torch.Tensor:
        return (logits.squeeze(-1) > 0).long() if logits.shape[-1] == 1 else logits.argmax(-1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, float]:
        x, y = batch
        with self.autocast():
            logits = self.train_modules["model"](x).float()
        loss = self._loss(logits, y)
        self.optimize("model", loss)
        return {"loss": loss.item(), "accuracy": (self._predict(logits) == y).float().mean().item()}

    def _logits(self, x: torch.Tensor, chunk: int = 500) -> torch.Tensor:
        model = self.modules["model"]
        outs = []
        for i in range(0, len(x), chunk):  # any N: no partial-batch special case
            with self.autocast():
                outs.append(model(x[i:i + chunk].to(self.device)).float().cpu())
        return torch.cat(outs)

    def evaluate(self) -> dict[str, float]:
        self.load_data_once()
        logits = self._logits(self.vx)
        pred = self._predict(logits)
        majority = torch.bincount(self.vy).max().item() / len(self.vy)
        return {"accuracy": (pred == self.vy).float().mean().item(), "loss": self._loss(logits, self.vy).item(),
                "majority_baseline": majority, "n_test": float(len(self.vy))}

    def generate(self, opts: Sample) -> Bundle:
        """Predictions on `n` held-out images picked with `seed`: the captioned picture (wrong
        predictions in red) and the table of (label, prediction)."""
        self.load_data_once()
        g = torch.Generator().manual_seed(opts.seed)
        idx = torch.randperm(len(self.vx), generator=g)[:opts.n]
        labels, pred = self.vy[idx].tolist(), self._predict(self._logits(self.vx[idx])).tolist()
        names = self.class_names()
        picture = Images.from_float(self.vx[idx], ncol=PICTURE_COLUMNS, name="predictions",
                                    labels=[f"label {names[a]}\npred {names[b]}" for a, b in zip(labels, pred)],
                                    highlight=[a != b for a, b in zip(labels, pred)],
                                    title="under each image: its true label, then the prediction (red: wrong)")
        table = Points(torch.tensor([labels, pred]).T.numpy(), ["label", "prediction"], name="predictions")
        return Bundle({"predictions": picture, "table": table})

    def show_data(self, n: int | None = None) -> Images:
        """The first n training images (64 by default) with their (remapped) class names."""
        self.load_data_once()
        n = min(n or 64, len(self.x))
        names = self.class_names()
        return Images.from_float(self.x[:n], labels=[names[i] for i in self.y[:n].tolist()], name="data",
                                 title=f"classifier: {n} of {len(self.x)} training images, captioned with their class")

    def class_names(self) -> list[str]:
        """Names of the (remapped) classes: the kept labels with classes=..., else the data's."""
        keep = self.config.class_list()
        if keep:
            return [str(k) for k in keep]
        return [str(n) for n in self.label_names] if len(self.label_names) >= self.num_classes \
            else [str(i) for i in range(self.num_classes)]
