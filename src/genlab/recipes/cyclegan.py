"""CycleGAN (Zhu et al. 2017): unpaired translation between two image domains A and B.

Two ResNet generators (A->B, B->A) and two PatchGAN discriminators, least-squares
adversarial loss, cycle-consistency loss (lambda_cycle = 10), optional identity loss
(lambda_identity x lambda_cycle) and a 50-image history pool for the discriminators.
The default data are procedural faces, black hair (A) vs blond hair (B), from disjoint
index sets (unpaired); because every face can be re-rendered with only its hair changed,
evaluation knows the right answer.

DDP sees one forward per backward: both generators live in one module whose forward runs
the whole cycle, and both discriminators in one module (models/cyclegan.py); the losses are
in models/losses.py.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.images import load_image_folder, resize_uint8, to_float, to_nchw_uint8
from ..engine.config import TrainConfig
from ..errors import ConfigError, DataError
from ..models.cyclegan import CycleDiscriminators, CycleGANConfig, CycleGenerators, ImagePool
from ..models.losses import cycle_losses, lsgan_loss
from ..outputs import Bundle, Images
from .base import SampleOptions
from .image_base import ImageRecipe, check_sample, stacked_rows

B_STREAM = 2_000_003     # step_rng stream of domain B's epoch permutations (A uses batch_indices' own)
POOL_STREAM = 7          # step_rng stream of the image pools' draws
FACES_SEED = 0           # the procedural faces every faces recipe uses


@dataclass
class CycleConfig(TrainConfig):
    alternating_steps = True      # D and G step in turn (no grad_accum)
    attribute: str = "blond"      # embedded faces: A = faces without it, B = faces with it
    data_a: str = ""              # domain folders (alternative to --data DIR with two sub-folders)
    data_b: str = ""              # domain B's folder (with data_a)
    image_size: int = 32          # side of the square images (px)
    channels: int = 3             # 1 (grey) or 3 (RGB)
    n_train: int = 2000           # embedded data: faces per domain
    n_val: int = 200              # held-out faces per domain (folders: 10% or testA/testB)
    g_width: int = 16             # generator channels after the first 7x7 conv (ngf)
    n_down: int = 2               # stride-2 downsamplings (and upsamplings) in each generator
    n_blocks: int = 3             # residual blocks per generator (paper: 9 at 256 px)
    d_width: int = 16             # PatchGAN channels after the first conv (ndf)
    d_layers: int = 2             # stride-2 convs of the PatchGAN (3 = 70x70 patches at 256 px)
    input_skip: bool = True       # generators learn a change to their input (fast on CPU); paper/book: false
    upsample: str = "resize"      # resize (nearest + conv, no checkerboard) | transpose (paper/book)
    lambda_cycle: float = 10.0    # weight of the cycle-consistency L1 loss
    lambda_identity: float = 0.5  # x lambda_cycle (paper: 0.5); 0 = off
    pool_size: int = 50           # image history for the discriminators; 0 = off
    beta1: float = 0.5            # Adam betas (paper: 0.5, 0.999)
    beta2: float = 0.999          # Adam's second beta
    epochs: int = 0               # > 0: max_steps = epochs x ceil(images per domain / batch_size)
    eval_samples: int = 200       # held-out images per direction for the metrics
    batch_size: int = 4
    lr: float = 2e-4
    max_steps: int = 600
    save_every: int = 150
    eval_every: int = 0
    log_every: int = 25
    bounds = {"n_train": "[1, inf)", "n_val": "[1, inf)", "eval_samples": "[1, inf)"}
    path_keys = ("data", "data_a", "data_b")

    def check(self) -> None:
        if self.channels not in (1, 3) or self.image_size < 8:
            raise ConfigError("invalid config: need channels 1 or 3 and image_size >= 8")
        if self.image_size % (2 ** self.n_down):
            raise ConfigError(f"invalid config: image_size {self.image_size} must be divisible by 2**n_down")
        if self.image_size // 2 ** self.d_layers < 2:
            raise ConfigError("invalid config: d_layers too large for image_size (patches vanish)")
        if min(self.g_width, self.d_width, self.n_blocks + 1, self.d_layers) < 1:
            raise ConfigError("invalid config: widths, d_layers must be >= 1 and n_blocks >= 0")
        if self.lambda_cycle < 0 or self.lambda_identity < 0 or self.pool_size < 0:
            raise ConfigError("invalid config: lambdas and pool_size must be >= 0")
        if self.upsample not in ("transpose", "resize"):
            raise ConfigError(f"invalid config: upsample must be transpose or resize, got {self.upsample!r}")
        if bool(self.data_a) != bool(self.data_b):
            raise ConfigError("invalid config: set both data_a and data_b (or --data DIR with two sub-folders)")


@dataclass
class CycleSample(SampleOptions):
    n: int = 8
    input: str = ""               # a folder (or image) to translate; empty = held-out images
    direction: str = "AtoB"       # AtoB | BtoA

    def check(self) -> None:
        check_sample(self)
        if self.direction not in ("AtoB", "BtoA"):
            raise ConfigError(f"direction must be AtoB or BtoA, got {self.direction!r}")


class CycleGANRecipe(ImageRecipe):
    name = "cyclegan"
    Config = CycleConfig
    Sample = CycleSample
    presets = {"book": {"image_size": 256, "g_width": 64, "n_blocks": 9, "d_width": 64, "d_layers": 3,
                        "input_skip": False, "upsample": "transpose", "batch_size": 1, "lr": 2e-4, "epochs": 100,
                        "n_train": 1000}}

    def build_modules(self) -> dict[str, nn.Module]:
        c = self.config
        torch.manual_seed(c.seed)
        cfg = CycleGANConfig(c.image_size, c.channels, c.g_width, c.n_down, c.n_blocks, c.d_width, c.d_layers,
                             c.input_skip, c.upsample)
        shape = (c.channels, c.image_size, c.image_size)
        return {"generators": CycleGenerators(cfg), "discriminators": CycleDiscriminators(cfg),
                "pool_a": ImagePool(c.pool_size, shape), "pool_b": ImagePool(c.pool_size, shape)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {name: torch.optim.Adam(self.modules[name].parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
                for name in ("discriminators", "generators")}

    # -- data -----------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        c = self.config
        if c.data_a or c.data or c.data_b:
            self.train_a, self.val_a, self.train_b, self.val_b = self._folders()
            self.val_target_b = self.val_target_a = None
            # the feature net of the metrics learns from the folder's sub-folders (A vs B)
            self.domain = c.data or c.data_a
        else:
            self._faces()
            self.domain = "faces"

    def show_data(self, n: int | None = None) -> Images:
        """n training images of each domain (8 by default): domain A on the upper row of each
        pair of rows, domain B below (unpaired: a column is not one face translated)."""
        self.load_data_once()
        c = self.config
        n = min(n or 8, len(self.train_a), len(self.train_b))
        names = ((f"A: no {c.attribute}", f"B: {c.attribute}") if self.domain == "faces"
                 else ("A", "B"))
        x, ncol, rows = stacked_rows([to_float(self.train_a[:n]), to_float(self.train_b[:n])], list(names), per_row=8)
        return self.picture(x, ncol=ncol, row_labels=rows, name="data",
                            title=f"cyclegan: {n} unpaired training images per domain")

    def epoch_size(self) -> int:
        return max(len(self.train_a), len(self.train_b))

    def _faces(self) -> None:
        from ..data.faces import ATTRIBUTES, render_faces

        c = self.config
        if c.attribute not in ATTRIBUTES:
            raise ConfigError(f"unknown face attribute {c.attribute!r} (known: {', '.join(ATTRIBUTES)})")
        n, m, size = c.n_train, c.n_val, max(c.image_size, 16)

        def faces(start: int, count: int, value: bool) -> torch.Tensor:
            imgs, _ = render_faces(np.arange(start, start + count), seed=FACES_SEED, size=size,
                                   attributes={c.attribute: value})
            return resize_uint8(to_nchw_uint8(imgs, c.channels), c.image_size)

        # disjoint index ranges: no face appears in both domains (unpaired), nor in train and val
        self.train_a, self.train_b = faces(0, n, False), faces(n, n, True)
        self.val_a, self.val_b = faces(2 * n, m, False), faces(2 * n + m, m, True)
        # the same held-out faces with the attribute flipped: the ideal translations
        self.val_target_b, self.val_target_a = faces(2 * n, m, True), faces(2 * n + m, m, False)

    def _folders(self) -> tuple[torch.Tensor, ...]:
        c = self.config
        if c.data_a:
            a, b, ta, tb = Path(c.data_a), Path(c.data_b), None, None
            for p in (a, b):
                if not p.is_dir():
                    raise DataError(f"domain folder not found: {p}")
        else:
            root = Path(c.data)
            subs = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")} \
                if root.is_dir() else {}
            if {"trainA", "trainB"} <= set(subs):  # the CycleGAN datasets' layout
                a, b, ta, tb = subs["trainA"], subs["trainB"], subs.get("testA"), subs.get("testB")
            elif len(subs) == 2:
                a, b = subs.values()
                ta = tb = None
            else:
                raise DataError(f"{root}: expected two sub-folders (domains A and B, e.g. A/ and B/ or "
                                f"trainA/ and trainB/), found {len(subs)}")
        train_a, val_a = self._domain(a, ta)
        train_b, val_b = self._domain(b, tb)
        return train_a, val_a, train_b, val_b

    def _domain(self, path: Path, test: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        x = load_folder(path, c.image_size, c.channels)
        if test is not None:
            return x, load_folder(test, c.image_size, c.channels)
        k = min(max(1, len(x) // 10), c.n_val) if len(x) > 1 else 0
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(c.seed))
        return (x[perm[k:]], x[perm[:k]]) if k else (x, x)

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        # each domain has its own epoch permutation (its own size); "stream" keeps them independent
        a = self.train_a[self.batch_indices(index, len(self.train_a))]
        ib = self._indices_b(index)
        return {"real_a": to_float(a).to(self.device), "real_b": to_float(self.train_b[ib]).to(self.device),
                "index": torch.tensor(index)}

    def _indices_b(self, index: int) -> torch.Tensor:
        bs, n = self.config.batch_size, len(self.train_b)
        start = index * bs
        out, pos = [], start
        while pos < start + bs:
            epoch, offset = divmod(pos, n)
            perm = torch.randperm(n, generator=self.step_rng(epoch, stream=B_STREAM))
            take = min(start + bs - pos, n - offset)
            out.append(perm[offset:offset + take])
            pos += take
        return self.shard(torch.cat(out))

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        c = self.config
        G, D = self.train_modules["generators"], self.train_modules["discriminators"]
        real_a, real_b = batch["real_a"], batch["real_b"]
        identity = c.lambda_identity > 0
        # generators: fool both discriminators, close both cycles, (identity) leave the target domain alone
        with self.autocast():
            out = G(real_a, real_b, identity)
            s_fake_a, s_fake_b = D(out["fake_a"], out["fake_b"])
        adv = lsgan_loss(s_fake_a.float(), 1.0) + lsgan_loss(s_fake_b.float(), 1.0)
        cyc = cycle_losses({k: v.float() for k, v in out.items()}, real_a, real_b)
        g_loss = adv + c.lambda_cycle * (cyc["cycle_a"] + cyc["cycle_b"])
        if identity:
            g_loss = g_loss + c.lambda_cycle * c.lambda_identity * (cyc["idt_a"] + cyc["idt_b"])
        self.optimize("generators", g_loss)
        # discriminators: real vs (pooled, detached) fakes, real and fake in one forward per domain
        g = self.step_rng(int(batch["index"]), stream=POOL_STREAM)
        fake_a = self.modules["pool_a"].query(out["fake_a"].detach().float(), g)
        fake_b = self.modules["pool_b"].query(out["fake_b"].detach().float(), g)
        n_a, n_b = real_a.shape[0], real_b.shape[0]
        with self.autocast():
            s_a, s_b = D(torch.cat([real_a, fake_a]), torch.cat([real_b, fake_b]))
        s_a, s_b = s_a.float(), s_b.float()
        d_loss = 0.5 * (lsgan_loss(s_a[:n_a], 1.0) + lsgan_loss(s_a[n_a:], 0.0)
                        + lsgan_loss(s_b[:n_b], 1.0) + lsgan_loss(s_b[n_b:], 0.0))
        self.optimize("discriminators", d_loss)
        logs = {"g_loss": g_loss.item(), "g_adv": adv.item(), "d_loss": d_loss.item(),
                "cycle": (cyc["cycle_a"] + cyc["cycle_b"]).item() / 2}
        if identity:
            logs["identity"] = (cyc["idt_a"] + cyc["idt_b"]).item() / 2
        return logs

    # -- translation --------------------------------------------------------------------------------
    def translate(self, x: torch.Tensor, direction: str = "AtoB", chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """(translated, round trip) of float images in [-1, 1] (or uint8); CPU float results."""
        G = self.modules["generators"]
        fwd, back = (G.g_ab, G.g_ba) if direction == "AtoB" else (G.g_ba, G.g_ab)
        outs, recs = [], []
        for i in range(0, len(x), chunk):
            xi = to_float(x[i:i + chunk]).to(self.device)
            yi = fwd(xi)
            outs.append(yi.float().cpu())
            recs.append(back(yi).float().cpu())
        return torch.cat(outs), torch.cat(recs)

    def _sample_inputs(self, opts: CycleSample) -> torch.Tensor:
        c = self.config
        if opts.input:
            p = Path(opts.input)
            if not p.exists():
                raise DataError(f"input not found: {p}")
            x = load_folder(p, c.image_size, c.channels)
            return x[:opts.n] if len(x) > opts.n else x
        self.load_data_once()
        x = self.val_a if opts.direction == "AtoB" else self.val_b
        return x[:opts.n]

    def generate(self, opts: CycleSample) -> Bundle:
        """One strip per input (input, translated, round trip) and the translations as a grid;
        with `input`, each translated image is also written alone, in the folder's sorted order."""
        opts.check()
        x = to_float(self._sample_inputs(opts))
        y, r = self.translate(x, opts.direction)
        src, dst = (("A", "B") if opts.direction == "AtoB" else ("B", "A"))
        strips = torch.stack([x, y, r], 1).flatten(0, 1)
        return Bundle({
            "round_trip": self.picture(strips, ncol=3, name=f"round-trip-{opts.direction}",
                                       col_labels=[f"input ({src})", f"translated ({dst})", f"round trip ({src})"]),
            "translated": self.picture(y, name=f"translated-{opts.direction}", title=f"{src} -> {dst}",
                                       files_dir="translated" if opts.input else "")})

    # -- evaluation -------------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Per direction: round-trip L1, FID/KID against the target domain, on faces the L1 to the
        ideal translation and the judge's flipped / preserved shares; then their means."""
        self.load_data_once()
        m = self.config.eval_samples
        clf = self.attribute_classifier()
        out: dict[str, float] = {}
        per_dir: dict[str, list[float]] = {}
        for direction, src, tgt, ideal, other in (
                ("AtoB", self.val_a[:m], self.val_b, self.val_target_b, self.train_b),
                ("BtoA", self.val_b[:m], self.val_a, self.val_target_a, self.train_a)):
            fake, rec = self.translate(src, direction)
            real_src = to_float(src)
            vals = {"cycle_l1": float((rec - real_src).abs().mean() / 2)}   # in [0, 1] pixel units
            rep = self.quality(tgt, fake, other_real=other)
            vals.update({k: rep[k] for k in ("fid", "kid", "n_fake", "n_real", "fid_lo", "fid_hi", "fid_floor",
                                             "kid_floor") if k in rep})
            if ideal is not None:
                vals["paired_l1"] = float((fake - to_float(ideal[:m])).abs().mean() / 2)
            if clf is not None:
                col, target = list(clf.attributes).index(self.config.attribute), 1 if direction == "AtoB" else 0
                p_src = np.asarray(clf.predict(real_src))
                face, p_fake = clf.judge(fake)   # a translation that is not a face fails both
                others = [j for j in range(p_src.shape[1]) if j != col]
                vals["flipped"] = float((face & (p_fake[:, col] == target)).mean())
                vals["preserved"] = float((face & (p_fake[:, others] == p_src[:, others]).all(1)).mean())
                vals["face_rate"] = float(face.mean())
            for k, v in vals.items():
                out[f"{k}_{direction}"] = v
                per_dir.setdefault(k, []).append(v)
        out.update({k: float(np.mean(v)) for k, v in per_dir.items()})
        return out


def load_folder(path: Path, size: int, channels: int) -> torch.Tensor:
    """uint8 (N, C, size, size) images of a folder (recursively); unreadable files are skipped."""
    folder = load_image_folder(path, size=size, channels=channels)
    if folder.skipped:
        print(f"warning: skipped {folder.skipped} unreadable image file(s) in {path}", file=sys.stderr)
    return to_nchw_uint8(folder.images, channels)
