"""The base of every recipe: it implements the trainer's seam (engine/seam.py's TrainableRecipe).

The trainer owns *when* things happen (steps, accumulation, clipping, schedules,
autocast, DDP, eval/sample hooks, early stopping, checkpoints, resume, logs).
A recipe owns *what* happens: which modules exist, what one batch is, what one
training step does, how to evaluate and what `generate` returns (a typed output of
genlab.outputs). To write a recipe, subclass `Recipe` (or a family base: lm_base.py,
image_base.py), give it a `Config` dataclass whose fields carry a one-line comment each
(`genlab keys` prints them), implement the methods marked "recipe" and add it to the registry.
"""
from __future__ import annotations

import abc
import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch
from torch import nn

from ..engine.config import TrainConfig
from ..engine.distributed import DistInfo
from ..errors import ConfigError, TrainingDiverged
from ..outputs import Output, Texts


@dataclass
class SampleOptions:
    """Options of `genlab sample`; recipes subclass this to add their own."""

    n: int = 16                    # samples per call
    seed: int = 0                  # sampling seed: the same seed and options give the same samples


class Recipe(abc.ABC):
    # -- declared by each recipe ------------------------------------------------------
    name: ClassVar[str] = ""               # the registry's name (its summary lines live there too)
    Config: ClassVar[type[TrainConfig]] = TrainConfig
    Sample: ClassVar[type[SampleOptions]] = SampleOptions
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, config: TrainConfig, device: torch.device | str = "cpu",
                 dist: DistInfo = DistInfo(), run_dir: Path | None = None):
        self.config = config
        self.device = torch.device(device)
        self.dist = dist
        self.run_dir = run_dir
        self.modules: dict[str, nn.Module] = {}
        # The modules training_step calls: the trainer swaps in DDP wrappers under torchrun.
        self.train_modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.micro_batch, self.micro_batches = 0, 1   # set by the trainer through start_micro_batch

    def setup(self, training: bool, resume: bool = False) -> None:
        """Order matters: artifacts (a tokenizer) and data can decide module shapes."""
        if self.run_dir is not None and (resume or not training):
            self.load_artifacts(self.run_dir)
        if training:
            self.load_data_once()
        self.modules = {k: m.to(self.device) for k, m in self.build_modules().items()}
        self.train_modules = dict(self.modules)

    # -- recipe: what the model is ----------------------------------------------------
    @abc.abstractmethod
    def build_modules(self) -> dict[str, nn.Module]:
        """Create the recipe's modules (pure nn.Modules), keyed by part name."""

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Default: one Adam over all trainable parameters, named 'model'."""
        params = [p for m in self.modules.values() for p in m.parameters() if p.requires_grad]
        return {"model": torch.optim.Adam(params, lr=self.config.lr)}

    def model_width(self) -> int | None:
        """The model's width (d_model) for lr_schedule=noam; None: the trainer's default."""
        return None

    # -- recipe: data and steps -----------------------------------------------------------
    def prepare_data(self) -> None:
        """Load training / held-out data (embedded default or config.data). Called before
        training and before evaluation; may also be needed by sampling."""

    @abc.abstractmethod
    def batch(self, index: int) -> Any:
        """This rank's part of global batch number `index` (a pure function of index)."""

    @abc.abstractmethod
    def training_step(self, batch: Any, step: int) -> dict[str, float]:
        """One step: forward, then self.optimize(name, loss) per optimizer; return scalars to log."""

    def evaluate(self) -> dict[str, float]:
        """Numbers on held-out data (modules are in eval mode)."""
        return {}

    @abc.abstractmethod
    def generate(self, opts: SampleOptions) -> Output:
        """Samples as one typed result (genlab.outputs: Texts, Images, Points, Bundle, ...)."""

    def write_samples(self, out_dir: Path, opts: SampleOptions) -> list[Path]:
        """Samples as files (PNG, text, MIDI) in out_dir; returns the paths."""
        return self.generate(opts).to_files(out_dir)

    def show_data(self, n: int | None = None) -> Output:
        """What the model learns from, without training (`genlab data`): the first `n` training
        examples (None: the recipe's choice) as the typed output its samples use, so data and
        samples can be compared side by side. This default describes training batch 0 as text;
        families and recipes override it with pictures, excerpts, points or music."""
        self.load_data_once()
        batch = self.batch(0)
        parts = batch.items() if isinstance(batch, dict) else enumerate(batch if isinstance(batch, (list, tuple))
                                                                         else [batch])
        texts = []
        for key, value in parts:
            if isinstance(value, torch.Tensor):
                rows = value[:n or 4].tolist() if value.ndim else [value.item()]
                texts.append(f"{key}: {value.dtype} {tuple(value.shape)}\n"
                             + "\n".join(str(row) for row in rows))
            else:
                texts.append(f"{key}: {value!r}")
        return Texts(texts, name="data", headings=[f"{self.name}: training batch 0, part {i + 1} of {len(texts)}"
                                                   for i in range(len(texts))])

    # -- recipe: files beside the weights (tokenizers, vocabularies) ---------------------
    def save_artifacts(self, run_dir: Path) -> None:
        """Write anything besides weights that loading needs (e.g. a tokenizer)."""

    def load_artifacts(self, run_dir: Path) -> None:
        """Read what save_artifacts wrote."""

    # -- helpers for recipes ----------------------------------------------------------------
    def step_rng(self, index: int, stream: int = 0) -> torch.Generator:
        """A CPU generator that depends only on (seed, index, stream): batches and noise stay
        identical across resume and across DDP world sizes."""
        digest = hashlib.sha256(f"{self.config.seed}/{index}/{stream}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))

    def batch_indices(self, index: int, n_items: int) -> torch.Tensor:
        """Global batch `index` as dataset indices: one random permutation per epoch, the
        batches laid end to end across epochs (so no partial last batch), this rank's shard."""
        bs = self.config.batch_size
        start, stop = index * bs, (index + 1) * bs
        out, pos = [], start
        while pos < stop:
            epoch, offset = divmod(pos, n_items)
            perm = torch.randperm(n_items, generator=self.step_rng(epoch, stream=1_000_003))
            take = min(stop - pos, n_items - offset)
            out.append(perm[offset:offset + take])
            pos += take
        return self.shard(torch.cat(out))

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch."""
        if not self.dist.enabled:
            return x
        if x.shape[0] % self.dist.world_size:
            raise ConfigError(f"batch_size {x.shape[0]} is not divisible by {self.dist.world_size} processes")
        return x[self.dist.rank::self.dist.world_size]

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for forward passes when config.bf16 is set."""
        if not self.config.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def start_micro_batch(self, index: int, count: int) -> None:
        """Called by the trainer before each training_step: micro-batch `index` of `count`."""
        self.micro_batch, self.micro_batches = index, count

    @property
    def is_last_micro_batch(self) -> bool:
        """True when optimize() steps the optimizers (the last micro-batch of an optimizer step)."""
        return self.micro_batch == self.micro_batches - 1

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """Backward `loss` and, on the last micro-batch, clip + step optimizer `name` and its schedule."""
        if not torch.isfinite(loss.detach()).all():
            raise TrainingDiverged(f"loss of '{name}' became {loss.item()} (try a lower lr, grad_clip, "
                                   "or bf16=false)")
        opt = self.optimizers[name]
        if self.micro_batch == 0:
            opt.zero_grad(set_to_none=True)
        (loss / self.micro_batches).backward()
        if self.is_last_micro_batch:
            if self.config.grad_clip > 0:
                params = [p for g in opt.param_groups for p in g["params"]]
                torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            opt.step()
            if name in self.schedulers:
                self.schedulers[name].step()

    def set_mode(self, train: bool) -> None:
        for m in self.modules.values():
            m.train(train)

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """Eval mode + no grad + a forked RNG, so evaluating never changes training."""
        was = {k: m.training for k, m in self.modules.items()}
        self.set_mode(False)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                yield
        finally:
            for k, m in self.modules.items():
                m.train(was[k])

    def load_data_once(self) -> None:
        if not getattr(self, "_data_ready", False):
            self.prepare_data()
            self._data_ready = True
