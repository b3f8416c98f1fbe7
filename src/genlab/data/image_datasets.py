"""Image datasets for the image recipes (classifier, autoencoders, VAE, GANs, diffusion) and
the metrics' feature networks: one loader.

`load_image_dataset(config)` reads these config keys (a recipe's Config declares the ones
it uses; missing keys take the defaults below):

    dataset       faces | digits | mnist | fashion-mnist   (ignored when `data` is set)
    data          a path: an image folder (sub-folders = classes), one image, or IDX files
                  (a folder holding an images/labels pair, or the images file itself)
    image_size    side of the square images (default 28)
    channels      1 (grey) or 3 (RGB) (default 1)
    n_train       faces: how many faces to render (train + held-out); folders: max images (0 = all)
    val_fraction  held-out share (default 0.2)
    seed          the split's seed

Images come back as float tensors (N, C, H, W) in [-1, 1]. Splits:
- faces: the last `val_fraction` of the rendered faces (every face is independent);
- digits (sklearn's 1,797 8x8 digits, upscaled) and image folders: a seeded permutation;
- IDX: a train-*/t10k-* pair gives train / held-out; a single pair (e.g. the shared MNIST
  t10k file) keeps its order and holds out its last `val_fraction` (MNIST t10k with the
  default 0.2: first 8,000 train, last 2,000 held-out).
Corrupt image files are skipped, counted in `ImageData.skipped` and reported on stderr.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .images import load_image_folder, resize, set_channels, to_tensor

DATASETS = ("faces", "digits", "mnist", "fashion-mnist")
DEFAULT_FACES = 6000        # faces rendered (train + held-out) when n_train is 0
_REPO = Path(__file__).resolve().parents[3]  # the project root (src/genlab/data/ -> ../../..)


@dataclass
class ImageData:
    """Train and held-out images (float NCHW in [-1, 1]) with their labels.

    `train_labels` / `val_labels` are int64 tensors: (N,) class indices, or (N, A) 0/1
    attributes for faces (names in `label_names`). `domain` names the feature network of
    the image metrics: "faces", "digits", "mnist", "fashion-mnist" or the data path.
    """

    train: torch.Tensor
    val: torch.Tensor
    train_labels: torch.Tensor
    val_labels: torch.Tensor
    label_names: list[str]
    domain: str
    skipped: int = 0
    source: str = ""
    multi_label: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def classes(self, attribute: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """(train, held-out) class indices and the class names: the labels as they are, or for
        faces one binary attribute as two classes (0 = "no ATTRIBUTE", 1 = "ATTRIBUTE")."""
        if not self.multi_label:
            return self.train_labels.long(), self.val_labels.long(), list(self.label_names)
        if attribute not in self.label_names:
            raise ConfigError(f"invalid config: attribute must be one of {', '.join(self.label_names)}, "
                              f"got {attribute!r}")
        k = self.label_names.index(attribute)
        return self.train_labels[:, k].long(), self.val_labels[:, k].long(), [f"no {attribute}", attribute]

    @property
    def channels(self) -> int:
        return int(self.train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.shape[-1])


def find_mnist() -> Path | None:
    """The shared MNIST folder (../shared/data/images/mnist from the project root or the
    working directory) when it holds an IDX pair, else None."""
    from .idx import find_idx_pair

    for base in (Path.cwd().parent, _REPO.parent):
        p = base / "shared" / "data" / "images" / "mnist"
        try:
            if p.is_dir() and find_idx_pair(p):
                return p
        except (OSError, DataError):
            continue
    return None


def n_held_out(n: int, fraction: float) -> int:
    if n < 2:
        raise DataError(f"need at least 2 images to hold some out, found {n}")
    return min(n - 1, max(1, int(round(n * fraction))))


def load_faces_tensors(n: int, size: int, channels: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n procedural faces of `seed` at `size`: (images [-1,1] NCHW, attributes (N, A))."""
    from .faces import load_faces

    images, attrs = load_faces(n, size=size, seed=seed)
    return set_channels(to_tensor(images), channels), torch.from_numpy(attrs).long()


def load_digits_tensors(size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 1,797 8x8 digits upscaled to `size`: (images [-1,1] NCHW, labels)."""
    from .digits import load_digits

    images, labels = load_digits(size)
    signed = torch.from_numpy(images).mul(2.0).sub(1.0).clamp(-1.0, 1.0)   # load_digits gives [0, 1]
    return set_channels(signed, channels), torch.from_numpy(labels)


def load_idx_tensors(path: str | Path, size: int, channels: int
                     ) -> list[tuple[torch.Tensor, torch.Tensor, Path]]:
    """Every IDX images/labels pair at `path` (train-* first, then t10k-*), resized."""
    from .idx import find_idx_pair, load_idx_dataset

    pairs = find_idx_pair(path)
    if not pairs:
        raise DataError(f"no IDX images/labels pair found at {path}")
    out = []
    for img_path, lab_path in pairs[:2]:
        images, labels = load_idx_dataset(img_path, lab_path)
        x = set_channels(resize(to_tensor(images), size), channels)
        out.append((x, torch.from_numpy(labels), img_path))
    return out


def is_idx(path: Path) -> bool:
    from .idx import find_idx_pair

    if path.is_file():
        return bool(find_idx_pair(path))
    return path.is_dir() and bool(find_idx_pair(path))


def idx_split(path: Path, size: int, channels: int, val_fraction: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str]:
    sets = load_idx_tensors(path, size, channels)
    if len(sets) >= 2 and sets[0][2].name.lower().startswith("train"):
        (xt, yt, pt), (xv, yv, pv) = sets[0], sets[1]
        return xt, xv, yt, yv, f"{pt.name} / {pv.name}"
    x, y, p = sets[0]
    k = n_held_out(len(x), val_fraction)
    return x[:-k], x[-k:], y[:-k], y[-k:], f"{p.name} (first {len(x) - k} / last {k})"


def permuted_split(x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    k = n_held_out(len(x), val_fraction)
    val, train = perm[:k], perm[k:]
    return x[train], x[val], y[train], y[val]


def load_image_dataset(config: Any) -> ImageData:
    """Train / held-out images for an image recipe from its config (see the module docstring)."""
    dataset = str(getattr(config, "dataset", "faces") or "faces")
    data = str(getattr(config, "data", "") or "")
    size = int(getattr(config, "image_size", 28))
    channels = int(getattr(config, "channels", 1))
    val_fraction = float(getattr(config, "val_fraction", 0.2))
    seed = int(getattr(config, "seed", 0))
    n_train = int(getattr(config, "n_train", 0) or 0)
    if channels not in (1, 3):
        raise ConfigError(f"invalid config: channels must be 1 or 3, got {channels}")
    if size < 4:
        raise ConfigError(f"invalid config: image_size must be >= 4, got {size}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"invalid config: val_fraction must be in (0, 1), got {val_fraction}")

    if data:
        path = Path(data)
        if not path.exists():
            raise DataError(f"data path not found: {path}")
        if is_idx(path):
            xt, xv, yt, yv, source = idx_split(path, size, channels, val_fraction)
            names = [str(i) for i in range(int(max(yt.max(), yv.max())) + 1)]
            return ImageData(xt, xv, yt, yv, names, str(path), source=f"IDX {source}")
    
        folder = load_image_folder(path, size=size, channels=channels, max_images=n_train or None)
        if folder.skipped:
            print(f"genlab: skipped {folder.skipped} unreadable image file(s) in {path}", file=sys.stderr)
        x, y = to_tensor(folder.images), torch.from_numpy(folder.labels)
        xt, xv, yt, yv = permuted_split(x, y, val_fraction, seed)
        return ImageData(xt, xv, yt, yv, [n or "images" for n in folder.class_names], str(path),
                         skipped=folder.skipped, source=f"{len(x)} images from {path}")

    if dataset == "faces":
        from .faces import ATTRIBUTES

        n = n_train or DEFAULT_FACES
        x, y = load_faces_tensors(n, size, channels)
        k = n_held_out(n, val_fraction)
        return ImageData(x[:-k], x[-k:], y[:-k], y[-k:], list(ATTRIBUTES), "faces",
                         source=f"{n} procedural faces (seed 0), last {k} held out", multi_label=True)
    if dataset == "digits":
        x, y = load_digits_tensors(size, channels)
        xt, xv, yt, yv = permuted_split(x, y, val_fraction, seed)
        return ImageData(xt, xv, yt, yv, [str(i) for i in range(10)], "digits",
                         source=f"sklearn digits 8x8 -> {size}x{size}")
    if dataset in ("mnist", "fashion-mnist"):
        if dataset == "mnist":
            folder = find_mnist()
            hint = "expected ../shared/data/images/mnist; or pass --data DIR with IDX files"
        else:
            from .idx import find_fashion_mnist

            folder = find_fashion_mnist()
            hint = "install Debian's dataset-fashion-mnist or pass --data DIR with its IDX files"
        if folder is None:
            raise DataError(f"{dataset} not found ({hint})")
        xt, xv, yt, yv, source = idx_split(folder, size, channels, val_fraction)
        return ImageData(xt, xv, yt, yv, [str(i) for i in range(10)], dataset, source=f"{dataset} {source}")
    raise ConfigError(f"invalid config: dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
