"""The feature networks behind genlab's image metrics (FID, KID, precision/recall).

Papers compute FID with an ImageNet-trained Inception-v3. genlab cannot download weights
at run time and its images are small (8-64 px digits, faces, users' folders), so it trains
its own small feature network per image domain, once, deterministically, in well under a
minute on a CPU, and caches it:

    get_feature_net("faces", 64, 3)        # procedural faces: attributes + face properties
    get_feature_net("digits", 28, 1)       # scikit-learn's 8x8 digits (embedded), upscaled
    get_feature_net("mnist", 28, 1)        # MNIST (the shared copy)
    get_feature_net("path/to/folder", 64, 3)   # a labelled image folder (or IDX files)

The network is the engine's CNN classifier (models/classifier.py); features are its
penultimate layer (128 numbers). It looks at images of at most 32x32: larger inputs are
area-downsampled first (which keeps training cheap and is plenty for these domains).

IMPORTANT: these FID/KID numbers are only comparable with numbers computed with the same
feature network (same `.version`). They are NOT comparable with Inception-based FID/KID
from papers or other libraries, nor across domains or image sizes.

Cache: $GENLAB_CACHE/metrics (default ~/.cache/genlab/metrics), one safetensors file per
(domain, size, channels) with the version, training settings and held-out accuracy in its
metadata. Nothing is unpickled. A file whose format version differs is retrained.

Domains:
- "faces": multi-label BCE on the binary attributes (glasses, blond, smiling), hair style
  (one-hot, BCE) plus MSE on standardized continuous properties (position, scale, rotation,
  skin, background and clothes colours) read from the face generator's parameters, so the
  features also see the variation a good generator must reproduce. The same network is the
  `AttributeClassifier` used to score attribute edits; its held-out accuracy is stored.
  The attribute judge is a separate "robust" network trained the same way on degraded
  copies (pixel noise, blotchy low-resolution noise, blur): a plain network reads a little
  noise around the eyes as glasses (at 32 px, noise of std 0.05 turned 33% of glasses-free
  faces into "glasses"), and generated images always carry some noise.
- "faces-gate": the face gate in front of the judge, the same small CNN with one output ("is
  this a face at all?"), trained (on degraded copies too) on faces against the non-faces of
  `metrics.non_faces` (blanks, noise, untrained generators' outputs, shuffled or drowned
  faces, mean faces), so that attribute scores count an image that is not a face as a failure
  (`AttributeClassifier.score`). Its share of held-out faces accepted and of held-out
  non-faces refused (per kind) is stored. A separate network, not a head of the judge: trained
  together, the non-faces cost the judge 11 points of smiling accuracy at 16 px.
- "digits": the 10 digit labels (cross-entropy) of scikit-learn's 8x8 digits (1,437 train, 360
  held out), the embedded data set, so its numbers are the same on every machine.
- "mnist": the 10 labels of MNIST's shared t10k file (first 8,000 images; the last 2,000 are
  its accuracy check). Two networks, not one that silently switches: a digits-trained network
  judges upscaled 8x8 digits, an MNIST-trained one MNIST.
- "fashion-mnist": the 10 labels, from the system's IDX files.
- a path: an image folder's sub-folder labels (or an IDX pair's labels). A folder with a
  single class carries no labels to learn from, so it falls back to the faces network at
  the same size and channels.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from ..models.classifier import ClassifierConfig, CNNClassifier

FORMAT_VERSION = 1            # bump when training data, targets or architecture change
MAX_WORK_SIZE = 32            # the networks see at most 32x32 pixels
DEFAULT_STEPS = {"faces": 1500, "digits": 400, "folder": 400, "gate": 600}
BATCH_SIZE = 64
LR = 2e-3
WIDTH = 16
FEATURE_DIM = 128
N_FACES_TRAIN = 6000
N_FACES_VAL = 1000
REGRESS_WEIGHT = 0.1
FACES_VAL_SEED = 7919           # held-out faces: a seed never used for training
NON_FACES_SEED = 104729         # the gate's training non-faces; held-out ones use FACES_VAL_SEED

# Continuous face properties regressed by the faces network (names of the generator's parameters).
_FACE_SCALARS = ("cx", "cy", "scale", "rot", "fa", "bgdir")
_FACE_COLOURS = ("skin", "bg1", "bg2", "cloth", "hair")
_N_HAIR_STYLES = 5


def cache_dir() -> Path:
    """$GENLAB_CACHE/metrics, else ~/.cache/genlab/metrics."""
    from ..data.download import cache_root

    return cache_root() / "metrics"


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Train single-threaded: the result does not depend on the machine's core count, and
    on a busy machine one thread is much faster than oversubscribed ones."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def prepare(images: Any, channels: int, work_size: int) -> torch.Tensor:
    """Images (float NCHW in [-1,1], tensor or array; or uint8 NHWC) -> float NCHW at work_size."""
    from ..data.images import resize, set_channels, to_tensor

    if isinstance(images, np.ndarray) and images.dtype == np.uint8:
        x = to_tensor(images)
    else:
        x = torch.as_tensor(images).detach().float()
    if x.ndim == 3:
        x = x[:, None] if channels == 1 and x.shape[0] != 1 else x[None]
    if x.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(x.shape)}")
    return resize(set_channels(x.cpu(), channels), work_size)


@dataclass
class HeadSpec:
    """What the output units mean: `binary` multi-label BCE, `classes` softmax CE, `regress` MSE."""

    kind: str                       # "multilabel" | "classes"
    binary: list[str]               # names of BCE outputs (attributes, then one-hot groups)
    classes: list[str]              # names of the softmax classes (kind == "classes")
    regress: list[str]              # names of MSE outputs (standardized)
    n_attributes: int = 0           # the first n binary outputs are the public attributes

    @property
    def face_index(self) -> int | None:
        """The output unit of the face gate ("is this a face at all?"), if the network has one."""
        return self.binary.index("face") if "face" in self.binary else None

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.kind == "classes" else len(self.binary) + len(self.regress)


class FeatureNet:
    """A trained CNN classifier used as a feature extractor (eval mode, CPU).

    `features(images)` -> (N, 128) float64 array of penultimate activations. `version`
    identifies the exact network: compare metrics only between equal versions.
    """

    def __init__(self, net: CNNClassifier, cfg: ClassifierConfig, heads: HeadSpec, meta: dict[str, str]):
        self.net, self.cfg, self.heads, self.meta = net.eval(), cfg, heads, meta
        self.channels, self.work_size = cfg.in_channels, cfg.image_size

    @property
    def version(self) -> str:
        return self.meta["version"]

    @property
    def accuracy(self) -> dict[str, float]:
        """Held-out accuracy of the network's own task (per attribute, or "classes")."""
        return json.loads(self.meta.get("accuracy", "{}"))

    @torch.no_grad()
    def logits(self, images: Any, batch_size: int = 512) -> torch.Tensor:
        x = prepare(images, self.channels, self.work_size)
        return torch.cat([self.net(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]) \
            if len(x) else torch.zeros(0, self.heads.n_outputs)

    @torch.no_grad()
    def features(self, images: Any, batch_size: int = 512) -> np.ndarray:
        """Penultimate activations, (N, feature_dim) float64, of images in [-1, 1]."""
        x = prepare(images, self.channels, self.work_size)
        if not len(x):
            return np.zeros((0, self.cfg.feature_dim))
        out = [self.net.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return torch.cat(out).double().numpy()

    # -- files ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        from ..engine.io import save_safetensors

        meta = {**self.meta, "config": json.dumps(asdict(self.cfg)), "heads": json.dumps(asdict(self.heads))}
        save_safetensors(dict(self.net.state_dict()), path, metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> "FeatureNet":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        cfg_d = json.loads(meta.pop("config"))
        cfg_d["hidden"] = tuple(cfg_d["hidden"])
        cfg = ClassifierConfig(**cfg_d)
        heads = HeadSpec(**json.loads(meta.pop("heads")))
        net = CNNClassifier(cfg)
        net.load_state_dict(load_file(str(path)))
        return cls(net, cfg, heads, meta)


class AttributeClassifier:
    """Judges generated faces: is it a face at all, and which binary attributes (glasses, blond,
    smiling) does it show?

    Trust check: `accuracy` holds its per-attribute accuracy on held-out faces rendered at the
    requested size (from a seed never used in training), `face_accuracy` its share of held-out
    faces called faces and of held-out non-faces (per kind) refused.
    """

    def __init__(self, net: FeatureNet, gate: FeatureNet):
        if net.heads.n_attributes == 0:
            raise ValueError("this feature network does not predict face attributes")
        if gate.heads.face_index is None:
            raise ValueError("the gate network has no face output")
        self.net, self.gate = net, gate
        self.attributes: list[str] = net.heads.binary[:net.heads.n_attributes]

    @property
    def accuracy(self) -> dict[str, float]:
        return {k: v for k, v in self.net.accuracy.items() if k in self.attributes}

    @property
    def face_accuracy(self) -> dict[str, float]:
        """{"faces": share of held-out faces called faces, "non_faces": share of held-out
        non-faces refused, "non_faces_<kind>": the same per kind of non-face}."""
        return json.loads(self.gate.meta.get("face_accuracy", "{}"))

    @property
    def version(self) -> str:
        return f"{self.net.version}+{self.gate.version}"

    def _verdicts(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """(face probability (N,), attribute probabilities (N, n_attributes))."""
        face = torch.sigmoid(self.gate.logits(images)[:, self.gate.heads.face_index])
        attrs = torch.sigmoid(self.net.logits(images)[:, :len(self.attributes)])
        return face.double().numpy(), attrs.double().numpy()

    def probabilities(self, images: Any) -> np.ndarray:
        """(N, n_attributes) probabilities that each attribute is present (whether or not the
        image is a face: see `score` for numbers that count non-faces as failures)."""
        return self._verdicts(images)[1]

    def predict(self, images: Any) -> np.ndarray:
        """(N, n_attributes) 0/1 predictions."""
        return (self.probabilities(images) > 0.5).astype(np.int64)

    def face_probability(self, images: Any) -> np.ndarray:
        """(N,) probability that each image is a face at all."""
        return self._verdicts(images)[0]

    def is_face(self, images: Any) -> np.ndarray:
        """(N,) bool: the judge sees a face."""
        return self.face_probability(images) > 0.5

    def judge(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """(is_face (N,) bool, predict (N, n_attributes) 0/1) from one pass over the images."""
        face, attrs = self._verdicts(images)
        return face > 0.5, (attrs > 0.5).astype(np.int64)

    def score(self, images: Any, attribute: str, labels: Any) -> dict[str, float]:
        """How often the images show the requested value of `attribute`, a non-face counting as
        a failure: {"attribute_acc": share that are faces AND show labels[i],
        "face_rate": share that are faces}. `labels`: one 0/1 per image, or one for all."""
        if attribute not in self.attributes:
            raise ValueError(f"unknown face attribute {attribute!r} (known: {', '.join(self.attributes)})")
        face, pred = self.judge(images)
        want = np.broadcast_to(np.asarray(labels, dtype=np.int64).reshape(-1), face.shape)
        hit = face & (pred[:, self.attributes.index(attribute)] == want)
        return {"attribute_acc": float(hit.mean()) if len(hit) else float("nan"),
                "face_rate": float(face.mean()) if len(face) else float("nan")}


# --------------------------------------------------------------------------------------------
# training data per domain
# --------------------------------------------------------------------------------------------
@dataclass
class _Data:
    x: torch.Tensor                 # train images at work size
    y: torch.Tensor                 # float targets (multilabel) or long classes
    x_val: torch.Tensor             # held-out images (any size: prepare() resizes)
    y_val: torch.Tensor
    heads: HeadSpec
    source: str
    x_neg_val: torch.Tensor | None = None       # held-out non-faces (at the scored size)
    neg_val_kinds: list[str] | None = None


def _face_targets(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Binary targets (attributes + hair style one-hot) and continuous properties of faces
    0..n-1 of `seed`, read from the generator's parameters (no rendering needed)."""
    from ..data import faces

    u = faces._uniforms(np.arange(n), seed)
    attrs = (u[:, :len(faces.ATTRIBUTES)] < 0.5).astype(np.int64)
    p = faces._params(u, attrs)
    style = np.eye(_N_HAIR_STYLES)[p["hstyle"].astype(np.int64)]
    binary = np.concatenate([attrs, style], 1).astype(np.float32)
    cols = [p[k][:, None] for k in _FACE_SCALARS] + [p[k] for k in _FACE_COLOURS]
    cont = np.concatenate(cols, 1).astype(np.float32)
    bnames = list(faces.ATTRIBUTES) + [f"hair_style_{i}" for i in range(_N_HAIR_STYLES)]
    rnames = list(_FACE_SCALARS) + [f"{k}_{c}" for k in _FACE_COLOURS for c in "rgb"]
    return binary, cont, bnames, rnames


def _faces_counts(steps: int | None) -> tuple[int, int]:
    """(train, held-out) faces: the full sets by default; short test trainings render no more
    faces than they can see."""
    if steps is None:
        return N_FACES_TRAIN, N_FACES_VAL
    n = min(N_FACES_TRAIN, max(512, steps * BATCH_SIZE))
    return n, (N_FACES_VAL if n == N_FACES_TRAIN else min(N_FACES_VAL, max(200, n // 5)))


def _faces_data(size: int, channels: int, work: int, steps: int | None) -> _Data:
    from ..data.image_datasets import load_faces_tensors

    n, n_val = _faces_counts(steps)
    x, _ = load_faces_tensors(n, work, channels, seed=0)
    binary, cont, bnames, rnames = _face_targets(n, seed=0)
    mu, sd = cont.mean(0), cont.std(0) + 1e-6
    y = torch.from_numpy(np.concatenate([binary, (cont - mu) / sd], 1))
    # held out: another seed, rendered at the size the caller will score
    x_val, a_val = load_faces_tensors(n_val, size, channels, seed=FACES_VAL_SEED)
    from ..data.faces import ATTRIBUTES, GENERATOR_VERSION

    heads = HeadSpec("multilabel", bnames, [], rnames, n_attributes=len(ATTRIBUTES))
    return _Data(x, y, x_val, a_val.float(), heads,
                 f"procedural faces v{GENERATOR_VERSION}: {n} (seed 0) rendered at {work}px, "
                 f"{n_val} held out (seed {FACES_VAL_SEED})")


def _gate_data(size: int, channels: int, work: int, steps: int | None) -> _Data:
    """Faces (target 1) and half as many non-faces (target 0); held out: faces of another seed
    and non-faces of another seed, at the size the caller will score."""
    from ..data.faces import GENERATOR_VERSION
    from ..data.image_datasets import load_faces_tensors
    from .non_faces import non_faces

    n, n_val = _faces_counts(steps)
    faces, _ = load_faces_tensors(n, work, channels, seed=0)
    neg, _ = non_faces(n // 2, work, channels, faces, seed=NON_FACES_SEED)
    x = torch.cat([faces, neg])
    y = torch.cat([torch.ones(n, 1), torch.zeros(len(neg), 1)])
    x_val, _ = load_faces_tensors(n_val, size, channels, seed=FACES_VAL_SEED)
    data = _Data(x, y, x_val, torch.ones(n_val, 1), HeadSpec("multilabel", ["face"], [], []),
                 f"procedural faces v{GENERATOR_VERSION}: {n} (seed 0) rendered at {work}px against "
                 f"{len(neg)} non-faces (seed {NON_FACES_SEED}); {n_val} + {n_val} held out (seed {FACES_VAL_SEED})")
    data.x_neg_val, data.neg_val_kinds = _held_out_non_faces(x_val, n_val)
    return data


def _held_out_non_faces(x_val: torch.Tensor, n: int) -> tuple[torch.Tensor, list[str]]:
    """Non-faces at the held-out faces' size, from a seed the judge never trained on."""
    from .non_faces import non_faces

    return non_faces(n, x_val.shape[-1], x_val.shape[1], x_val, seed=FACES_VAL_SEED)


def _classes_data(x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                  names: list[str], work: int, source: str) -> _Data:
    from ..data.images import resize

    heads = HeadSpec("classes", [], names, [])
    return _Data(resize(x, work), y.long(), x_val, y_val.long(), heads, source)


def _digits_data(size: int, channels: int, work: int, mnist: bool) -> _Data:
    from ..data.image_datasets import find_mnist, load_digits_tensors, load_idx_tensors

    names = [str(i) for i in range(10)]
    if mnist:
        folder = find_mnist()
        if folder is None:
            raise DataError("mnist not found (expected ../shared/data/images/mnist)")
        x, y, p = load_idx_tensors(folder, size, channels)[0]
        k = 2000 if len(x) >= 4000 else max(1, len(x) // 5)
        return _classes_data(x[:-k], y[:-k], x[-k:], y[-k:], names, work,
                             f"MNIST {p.name}: first {len(x) - k} (last {k} held out)")
    x, y = load_digits_tensors(size, channels)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, va = perm[360:], perm[:360]
    return _classes_data(x[tr], y[tr], x[va], y[va], names, work, "sklearn digits (1,437 train, 360 held out)")


def _path_data(path: Path, size: int, channels: int, work: int) -> _Data | None:
    """Labelled data from an IDX pair or image folder; None when the folder has one class."""
    from ..data.image_datasets import idx_split, is_idx, permuted_split
    from ..data.images import to_tensor

    if is_idx(path):
        xt, xv, yt, yv, source = idx_split(path, size, channels, 0.2)
        names = [str(i) for i in range(int(max(yt.max(), yv.max())) + 1)]
        return _classes_data(xt, yt, xv, yv, names, work, f"IDX {source}")
    from ..data.images import load_image_folder

    folder = load_image_folder(path, size=size, channels=channels)
    if len(folder.class_names) < 2:
        return None
    x, y = to_tensor(folder.images), torch.from_numpy(folder.labels)
    xt, xv, yt, yv = permuted_split(x, y, 0.2, seed=0)
    return _classes_data(xt, yt, xv, yv, folder.class_names, work,
                         f"image folder {path}: {len(x)} images, {len(folder.class_names)} classes")


def _folder_key(path: Path) -> str:
    """A short hash of a data path's file list, sizes and modification times."""
    h = hashlib.sha256(str(path.resolve()).encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path) if f != path else f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
def _loss(logits: torch.Tensor, y: torch.Tensor, heads: HeadSpec) -> torch.Tensor:
    if heads.kind == "classes":
        return F.cross_entropy(logits, y)
    nb = len(heads.binary)
    loss = F.binary_cross_entropy_with_logits(logits[:, :nb], y[:, :nb])
    if heads.regress:
        # a light weight: the properties shape the features without drowning the attributes
        loss = loss + REGRESS_WEIGHT * F.mse_loss(logits[:, nb:], y[:, nb:])
    return loss


def _store_accuracy(net: FeatureNet, x_val: torch.Tensor, y_val: torch.Tensor,
                    x_neg: torch.Tensor | None = None, neg_kinds: list[str] | None = None) -> None:
    """Held-out accuracy into the metadata: on clean images, and on images with noise of std 0.1
    (how far a judge of generated images can be trusted); with a face gate, also the share of
    held-out faces (clean and noisy) called faces and of held-out non-faces refused, per kind."""
    net.meta["accuracy"] = json.dumps(_accuracy(net, x_val, y_val))
    noisy = prepare(x_val, net.channels, net.work_size)
    noisy = (noisy + 0.1 * torch.randn(noisy.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    net.meta["accuracy_noise_0.1"] = json.dumps(_accuracy(net, noisy, y_val))
    fi = net.heads.face_index
    if fi is None or x_neg is None or neg_kinds is None:
        return
    face = lambda x: (net.logits(x)[:, fi] > 0).numpy()  # noqa: E731
    refused = ~face(x_neg)
    kinds = np.asarray(neg_kinds)
    acc = {"faces": float(face(x_val).mean()), "faces_noise_0.1": float(face(noisy).mean()),
           "non_faces": float(refused.mean())}
    acc.update({f"non_faces_{k}": float(refused[kinds == k].mean()) for k in dict.fromkeys(neg_kinds)})
    net.meta["face_accuracy"] = json.dumps(acc)


def _accuracy(net: FeatureNet, x_val: torch.Tensor, y_val: torch.Tensor) -> dict[str, float]:
    logits = net.logits(x_val)
    if net.heads.kind == "classes":
        return {"classes": float((logits.argmax(1) == y_val).float().mean())}
    na = net.heads.n_attributes
    pred = (logits[:, :na] > 0).float()
    return {name: float((pred[:, i] == y_val[:, i]).float().mean()) for i, name in enumerate(net.heads.binary[:na])}


def degrade(x: torch.Tensor, g: torch.Generator, max_noise: float = 0.2) -> torch.Tensor:
    """Randomly degraded copies of images in [-1, 1], the kinds of error generators make: pixel
    noise (std up to max_noise), blotchy noise at half resolution, and blur, each sample its own."""
    n = len(x)

    def per_sample(lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(n, 1, 1, 1, generator=g)).to(x.dtype)

    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = torch.lerp(x, blurred, per_sample(0.0, 1.0) * (torch.rand(n, 1, 1, 1, generator=g) < 0.5))
    h, w = x.shape[-2:]
    coarse = torch.randn(n, x.shape[1], (h + 1) // 2, (w + 1) // 2, generator=g)
    coarse = F.interpolate(coarse, scale_factor=2, mode="nearest")[..., :h, :w]
    x = x + per_sample(0.0, max_noise) * torch.randn(x.shape, generator=g) + per_sample(0.0, max_noise / 2) * coarse
    return x.clamp(-1.0, 1.0)


def train_feature_net(domain: str, size: int, channels: int, steps: int | None = None, seed: int = 0,
                      batch_size: int = BATCH_SIZE, lr: float = LR, robust: bool = False) -> FeatureNet:
    """Train the feature network of `domain` from scratch (no cache). Deterministic for a
    given (domain, size, channels, steps, seed, robust): single thread, seeded init and batches.
    robust=True trains on `degrade`d images (the attribute judge and its face gate)."""
    work = min(size, MAX_WORK_SIZE)
    t0 = time.time()
    kind, data = _domain_data(domain, size, channels, work, steps)
    steps = DEFAULT_STEPS[kind] if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    cfg = ClassifierConfig(arch="cnn", in_channels=channels, image_size=work, width=WIDTH,
                           feature_dim=FEATURE_DIM, num_classes=data.heads.n_outputs)
    # enable_grad: this may run inside a recipe's evaluate(), which is under no_grad
    with _one_thread(), torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        net = CNNClassifier(cfg)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
        g = torch.Generator().manual_seed(seed)
        net.train()
        n = len(data.x)
        perm, pos = torch.randperm(n, generator=g), 0
        for _ in range(steps):
            if pos + batch_size > n:  # a fresh permutation per epoch; no partial batches
                perm, pos = torch.randperm(n, generator=g), 0
            idx = perm[pos:pos + min(batch_size, n)]
            pos += len(idx)
            x = degrade(data.x[idx], g) if robust else data.x[idx]
            loss = _loss(net(x), data.y[idx], data.heads)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in net.state_dict().values()))
        name = domain if kind in ("faces", "gate", "digits") else f"folder-{_folder_key(Path(domain))}"
        name = "faces" if kind == "faces" else name       # a single-class folder trains the faces network
        name += "-robust" if robust else ""
        meta = {"version": f"genlab-featnet-v{FORMAT_VERSION}/{name}/{size}px-{channels}ch/{digest.hexdigest()[:12]}",
                "format": str(FORMAT_VERSION), "domain": domain, "kind": kind, "size": str(size),
                "channels": str(channels), "steps": str(steps), "seed": str(seed), "robust": str(int(robust)),
                "source": data.source,
                "note": "small CNN trained by genlab; FID/KID NOT comparable with Inception-based numbers"}
        fnet = FeatureNet(net, cfg, data.heads, meta)
        _store_accuracy(fnet, data.x_val, data.y_val, data.x_neg_val, data.neg_val_kinds)
        fnet.meta["train_seconds"] = f"{time.time() - t0:.1f}"
    return fnet


def _domain_data(domain: str, size: int, channels: int, work: int, steps: int | None = None
                 ) -> tuple[str, _Data]:
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    if domain == "faces":
        return "faces", _faces_data(size, channels, work, steps)
    if domain == "faces-gate":
        return "gate", _gate_data(size, channels, work, steps)
    if domain in ("digits", "mnist"):
        return "digits", _digits_data(size, channels, work, mnist=domain == "mnist")
    if domain == "fashion-mnist":
        from ..data.idx import find_fashion_mnist

        folder = find_fashion_mnist()
        if folder is None:
            raise DataError("fashion-mnist not found (install Debian's dataset-fashion-mnist)")
        return "folder", _path_data(folder, size, channels, work)  # type: ignore[return-value]
    path = Path(domain)
    if not path.exists():
        raise DataError(f"unknown feature-net domain {domain!r} (faces, digits, mnist, fashion-mnist, or a path)")
    data = _path_data(path, size, channels, work)
    if data is None:
        return "faces", _faces_data(size, channels, work, steps)
    return "folder", data


def _single_class_folder(path: Path) -> bool:
    """True for an image folder (not IDX) whose images form fewer than two classes."""
    from ..data.images import IMAGE_EXTENSIONS
    from ..data.image_datasets import is_idx

    if not path.exists() or is_idx(path):
        return False
    if path.is_file():
        return True
    classes = {f.relative_to(path).parts[0] if len(f.relative_to(path).parts) > 1 else "."
               for f in path.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS
               and not any(part.startswith(".") for part in f.relative_to(path).parts)}
    return len(classes) < 2


def _cache_file(domain: str, size: int, channels: int, steps: int | None, robust: bool = False
                ) -> tuple[Path, str]:
    """(file, the domain actually trained) — single-class folders map to the faces file."""
    if domain in ("faces", "faces-gate", "digits", "mnist", "fashion-mnist"):
        name = domain
    else:
        path = Path(domain)
        if not path.exists():
            raise DataError(f"unknown feature-net domain {domain!r} (faces, digits, mnist, fashion-mnist, or a path)")
        name = f"folder-{_folder_key(path)}"
    name += "-robust" if robust else ""
    tail = "" if steps is None else f"-steps{steps}"
    return cache_dir() / f"featnet-v{FORMAT_VERSION}-{name}-{size}px-{channels}ch{tail}.safetensors", name


def get_feature_net(domain: str, size: int, channels: int, steps: int | None = None,
                    robust: bool = False) -> FeatureNet:
    """The cached feature network of an image domain, trained on first use (see module doc).

    `steps` overrides the training length (tests use tiny values; cached separately);
    robust=True: the network trained on degraded images (see `degrade`), cached separately.
    """
    domain = str(domain)
    if domain not in ("faces", "faces-gate", "digits", "mnist", "fashion-mnist") \
            and _single_class_folder(Path(domain)):
        domain = "faces"   # nothing to learn from one class: use the faces network
    path, _ = _cache_file(domain, size, channels, steps, robust)
    if path.is_file():
        try:
            net = FeatureNet.load(path)
            if _is_current(net, steps, domain):
                return net
        except Exception:  # unreadable or old file: train again
            pass
    if domain in ("faces", "faces-gate") and size > MAX_WORK_SIZE:
        # the same training (faces rendered at the work size): reuse those weights and only
        # measure the held-out accuracy on faces rendered at this size
        net = _faces_at_size(get_feature_net(domain, MAX_WORK_SIZE, channels, steps, robust), size, steps)
    else:
        net = train_feature_net(domain, size, channels, steps=steps, robust=robust)
    try:
        net.save(path)
    except OSError:
        pass  # a read-only cache only costs retraining
    return net


def _is_current(net: FeatureNet, steps: int | None, domain: str = "") -> bool:
    """A cached network is reused only if made by this format, with the default training
    length (when no `steps` was asked for), from the data the domain names (older "digits"
    files were MNIST-trained when MNIST was present) and, for faces, by the current face generator."""
    meta = net.meta
    if meta.get("format") != str(FORMAT_VERSION):
        return False
    if domain in ("digits", "mnist") and not meta.get("source", "").startswith(
            "sklearn" if domain == "digits" else "MNIST"):
        return False
    if steps is None and meta.get("steps") != str(DEFAULT_STEPS.get(meta.get("kind", ""), -1)):
        return False
    if meta.get("kind") in ("faces", "gate"):
        from ..data.faces import GENERATOR_VERSION

        return f"procedural faces v{GENERATOR_VERSION}:" in meta.get("source", "")
    return True


def _faces_at_size(base: FeatureNet, size: int, steps: int | None) -> FeatureNet:
    from ..data.image_datasets import load_faces_tensors

    x_val, a_val = load_faces_tensors(_faces_counts(steps)[1], size, base.channels, seed=FACES_VAL_SEED)
    meta = {**base.meta, "size": str(size),
            "version": base.version.replace(f"/{base.meta['size']}px-", f"/{size}px-")}
    net = FeatureNet(base.net, base.cfg, base.heads, meta)
    if base.heads.face_index is None:
        _store_accuracy(net, x_val, a_val.float())
    else:   # the gate: faces accepted, non-faces refused
        _store_accuracy(net, x_val, torch.ones(len(x_val), 1), *_held_out_non_faces(x_val, len(x_val)))
    return net


def get_attribute_classifier(size: int, channels: int = 3, steps: int | None = None) -> AttributeClassifier:
    """The judge of the procedural faces' attributes at `size` px (the robust "faces" network)
    with its face gate (the robust "faces-gate" network)."""
    return AttributeClassifier(get_feature_net("faces", size, channels, steps=steps, robust=True),
                               get_feature_net("faces-gate", size, channels, steps=steps, robust=True))
