"""The training loop every recipe shares.

Trainer.fit() decides *when*: steps, gradient accumulation, LR schedules, eval and
sample hooks, early stopping, NaN checks, checkpoints, resume, logs, progress and
plots. The recipe (see recipes/base.py) decides *what* a step is.
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..errors import ConfigError, Interrupted, TrainingDiverged
from .checkpoints import keep_checkpoint
from .config import estimate_config
from .distributed import DistInfo, barrier, broadcast_flag, mean_across_ranks
from .plots import plot_metrics
from .rundir import RunDir
from .schedules import lr_multiplier
from .seam import TrainableRecipe

# The noam schedule's d_model when a recipe states no model width.
DEFAULT_MODEL_WIDTH = 512


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; anything else is checked for availability."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"invalid device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} requested but MPS is not available")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG, in a form torch.load(weights_only=True) accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


@contextlib.contextmanager
def step_probe(recipe: TrainableRecipe) -> Iterator[Callable[[], None]]:
    """A function that runs one real training step of `recipe` (batches 0, 1, ... in turn, with
    throwaway optimizers and no LR schedule), for timing it (engine/threads.py). On exit the
    recipe is as before: weights, buffers (carried states, EMA copies, batch-norm statistics),
    modes, gradients, optimizers, schedules and every RNG, so a run that probed equals one
    that did not."""
    r = recipe
    saved = {k: {n: t.detach().clone() for n, t in m.state_dict().items()} for k, m in r.modules.items()}
    modes = {k: m.training for k, m in r.modules.items()}
    optimizers, schedulers, rng = r.optimizers, r.schedulers, rng_state()
    calls = 0

    def step() -> None:
        nonlocal calls
        r.start_micro_batch(0, 1)
        r.training_step(r.batch(calls), calls + 1)
        calls += 1

    try:
        r.set_mode(True)
        r.optimizers, r.schedulers = r.build_optimizers(), {}
        yield step
    finally:
        r.optimizers, r.schedulers = optimizers, schedulers
        for k, m in r.modules.items():
            m.load_state_dict(saved[k])
            m.train(modes[k])
            for p in m.parameters():
                p.grad = None
        r.start_micro_batch(0, 1)
        set_rng_state(rng)


class EarlyStopping:
    """Track the best value of one metric; say when `patience` evaluations brought nothing."""

    def __init__(self, metric: str, mode: str = "min", patience: int = 0):
        self.metric, self.mode, self.patience = metric, mode, patience
        self.best: float | None = None
        self.best_step = -1
        self.bad_evals = 0

    def update(self, value: float, step: int) -> bool:
        """Record a value; True if it is a new best."""
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if better and math.isfinite(value):
            self.best, self.best_step, self.bad_evals = value, step, 0
            return True
        self.bad_evals += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_evals >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.best, self.best_step, self.bad_evals = s["best"], s["best_step"], s["bad_evals"]


class Trainer:
    def __init__(self, recipe: TrainableRecipe, run: RunDir, dist: DistInfo = DistInfo(), progress: bool = True):
        self.recipe, self.run, self.dist = recipe, run, dist
        self.config = recipe.config
        self.progress = progress and dist.is_main
        self.stopper = (EarlyStopping(self.config.early_stop_metric, self.config.early_stop_mode,
                                      self.config.early_stop_patience)
                        if self.config.early_stop_metric else None)
        self.tb = None
        self.start: int | None = None         # the step training starts at (set by prepare)
        self.saved_step: int | None = None    # the last checkpoint that exists, for truthful messages

    # -- setup ------------------------------------------------------------------------------
    def _setup_optimizers(self) -> None:
        r, c = self.recipe, self.config
        r.optimizers = r.build_optimizers()
        d_model = r.model_width() or DEFAULT_MODEL_WIDTH
        for name, opt in r.optimizers.items():
            fn = lr_multiplier(c.lr_schedule, c.max_steps, c.warmup_steps, c.min_lr_ratio, d_model)
            r.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(opt, fn)

    def _wrap_ddp(self) -> None:
        if not self.dist.enabled:
            return
        from torch.nn.parallel import DistributedDataParallel as DDP

        r = self.recipe
        if self.config.batch_size % self.dist.world_size:
            raise ConfigError(f"batch_size {self.config.batch_size} is not divisible by "
                              f"{self.dist.world_size} processes")
        ids = [r.device.index] if r.device.type == "cuda" else None
        for name, m in r.modules.items():
            if any(p.requires_grad for p in m.parameters()):
                r.train_modules[name] = DDP(m, device_ids=ids)

    # -- checkpoints --------------------------------------------------------------------------
    def check_finite(self, step: int) -> None:
        """Refuse to call weights good (or save them over good ones) unless every parameter,
        buffer and optimizer state is finite: a loss can look fine one step after an update
        has already sent the weights to inf."""
        r = self.recipe
        named = [(f"{part}.{k}", t) for part, m in r.modules.items() for k, t in m.state_dict().items()]
        named += [(f"optimizer '{name}' state", t) for name, o in r.optimizers.items()
                  for s in o.state.values() for t in s.values()]
        for name, t in named:
            if torch.is_tensor(t) and t.is_floating_point() and not torch.isfinite(t).all():
                raise TrainingDiverged(f"{name} is no longer finite")

    def save(self, step: int, keep: bool = True, plot: bool = True) -> None:
        """Weights (safetensors) and full trainer state, each written atomically; rank 0 only.
        With keep_checkpoints, the weights also join the kept checkpoints (unless keep=False:
        a save forced by Ctrl-C is no point of the schedule to average). plot=False when the
        caller plots right after (a figure costs ~0.4 s: the end of a run draws one)."""
        if not self.dist.is_main:
            return
        r = self.recipe
        self.check_finite(step)
        self.run.save_weights(r.modules, step)
        self.run.save_state({
            "step": step,
            "modules": {k: m.state_dict() for k, m in r.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in r.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in r.schedulers.items()},
            "rng": rng_state(),
            "early_stop": self.stopper.state_dict() if self.stopper else None,
        })
        if keep and self.config.keep_checkpoints:
            keep_checkpoint(self.run, self.run.module_tensors(r.modules), step, self.config.keep_checkpoints)
        self.saved_step = step
        if plot:
            self.plot()

    def restore(self) -> int:
        """Load the last checkpoint into recipe, optimizers and RNGs; return its step."""
        r = self.recipe
        state = self.run.load_state()
        from .rundir import check_finite_tensors, load_prefixed

        check_finite_tensors({f"{p}.{k}": v for p, sd in state["modules"].items() for k, v in sd.items()},
                             str(self.run.state_file))
        load_prefixed(r.modules, {f"{p}.{k}": v for p, sd in state["modules"].items() for k, v in sd.items()},
                      str(self.run.state_file))
        for k, o in r.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in r.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        set_rng_state(state["rng"])
        if self.stopper and state.get("early_stop"):
            self.stopper.load_state_dict(state["early_stop"])
        return int(state["step"])

    # -- logging ---------------------------------------------------------------------------------
    def log(self, row: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        with open(self.run.metrics_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("step", "time"):
                    self.tb.add_scalar(f"{row.get('kind', 'train')}/{k}", v, row["step"])

    def plot(self) -> None:
        if self.dist.is_main:
            plot_metrics(self.run.read_metrics(), self.run.plots_dir / "metrics.png",
                         title=f"{self.recipe.name} — {self.run.path.name}")

    def _open_tensorboard(self) -> None:
        if not (self.config.tensorboard and self.dist.is_main):
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("tensorboard=true needs the tensorboard package: pip install 'genlab[tensorboard]'") from None
        self.tb = SummaryWriter(str(self.run.path / "tensorboard"))

    # -- hooks -------------------------------------------------------------------------------------
    def _metrics(self, estimate: bool) -> dict[str, float]:
        """The recipe's evaluation: with estimate=True under estimate_config (the cheaper settings
        of evaluations during training), else under the run's config."""
        r = self.recipe
        full = r.config
        r.config = estimate_config(full) if estimate else full
        try:
            with r.eval_mode():
                return r.evaluate()
        finally:
            r.config = full

    def evaluate(self, step: int, final: bool = False) -> bool:
        """Evaluate on rank 0, log, keep the best checkpoint; True if training should stop.

        Evaluations during training are the cheap estimate (engine.config.estimate_config); the
        final one is the full report. Early stopping compares like with like: when earlier
        estimates were judged, the final step is judged on its estimate too (the log and
        best/metrics.json get the full report)."""
        stop = False
        if self.dist.is_main:
            self.check_finite(step)  # metrics of inf weights mean nothing (and sampling would crash)
            metrics = self._metrics(estimate=not final)
            judged = metrics
            if final and self.stopper and self.stopper.best is not None and self.estimates_differ:
                judged = self._metrics(estimate=True)
            self.log({"step": step, "kind": "eval", **metrics})
            if self.stopper:
                if self.stopper.metric not in judged:
                    raise ConfigError(f"early_stop_metric '{self.stopper.metric}' is not among the evaluation "
                                      f"metrics: {', '.join(judged) or 'none'}")
                if self.stopper.update(float(judged[self.stopper.metric]), step):
                    self.run.save_weights(self.recipe.modules, step, best=True)
                    from .io import write_text
                    write_text(self.run.best_dir / "metrics.json", json.dumps({"step": step, **metrics}, indent=1))
                stop = self.stopper.should_stop
        return broadcast_flag(stop, self.dist, self.recipe.device)

    @property
    def estimates_differ(self) -> bool:
        """True when evaluations during training are cheaper than the final one."""
        return estimate_config(self.config) != self.config

    def sample(self, step: int | None) -> list[Path]:
        if not self.dist.is_main:
            return []
        out = self.run.samples_dir / (f"step-{step:07d}" if step is not None else "")
        with self.recipe.eval_mode():
            return self.recipe.write_samples(out, self.recipe.Sample())

    # -- the loop ------------------------------------------------------------------------------------
    def prepare(self, resume: bool = False) -> int:
        """Optimizers and schedules, then the checkpoint to resume from (or fresh seeds); the
        step training starts at. Everything a resume can fail on fails here, before fit writes."""
        if self.start is not None:
            return self.start
        c = self.config
        self._setup_optimizers()
        self.start, self.saved_step = 0, None
        if resume and self.run.has_checkpoint():
            self.start = self.saved_step = self.restore()
        else:
            seed_everything(c.seed)
        return self.start

    def _where(self) -> str:
        """What a user can continue from, said truthfully."""
        if self.saved_step is None:
            return (f"no checkpoint was saved yet (save_every={self.config.save_every}); "
                    f"--resume would start over in {self.run.path}")
        return f"the last good checkpoint is step {self.saved_step} in {self.run.path} (continue with --resume)"

    @contextlib.contextmanager
    def _graceful_interrupt(self) -> Iterator[dict[str, bool]]:
        """The first Ctrl-C asks the loop to stop after the current step and save a checkpoint;
        a second one interrupts at once. Only in the main thread of a single process."""
        flag = {"stop": False}
        if self.dist.enabled or threading.current_thread() is not threading.main_thread():
            yield flag
            return

        def handler(signum: int, frame: Any) -> None:
            flag["stop"] = True
            signal.signal(signal.SIGINT, signal.default_int_handler)
            print("\ngenlab: stopping after this step and saving a checkpoint (Ctrl-C again to stop at once)",
                  file=sys.stderr, flush=True)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield flag
        finally:
            signal.signal(signal.SIGINT, previous)

    def fit(self, resume: bool = False) -> dict[str, Any]:
        try:
            return self._fit(resume)
        finally:  # however training ends: the `genlab` command exits without interpreter teardown
            if self.tb is not None:
                self.tb.close()
                self.tb = None

    def _fit(self, resume: bool) -> dict[str, Any]:
        r, c = self.recipe, self.config
        if self.dist.is_main:
            self.run.path.mkdir(parents=True, exist_ok=True)
        start = self.prepare(resume)
        if self.dist.is_main:
            if resume and self.saved_step is None:
                print(f"genlab: {self.run.path} has no checkpoint (state.pt): training starts at step 0 "
                      "and metrics.jsonl starts afresh", file=sys.stderr)
            if resume:  # the log holds each step once, as in an uninterrupted run
                self.run.truncate_metrics(start)
        # every rank reads the log (rows up to `start` survive the truncation either way), so all
        # agree on whether the final evaluation, a collective, still has to run
        done = self.run.read_metrics() if resume else []
        self._wrap_ddp()
        self._open_tensorboard()
        r.set_mode(True)

        bar = tqdm(total=c.max_steps, initial=start, disable=not self.progress, file=sys.stderr,
                   desc=r.name, dynamic_ncols=True, mininterval=0.5)
        t0, step, last_saved = time.time(), start, start
        # a finished run resumed again does not log its final evaluation twice
        last_eval = start if any(x.get("kind") == "eval" and x.get("step") == start for x in done) else -1
        window: dict[str, list[float]] = {}
        stopped_early = False
        try:
            with self._graceful_interrupt() as interrupt:
                for step in range(start + 1, c.max_steps + 1):
                    for micro in range(c.grad_accum):
                        r.start_micro_batch(micro, c.grad_accum)
                        ddp = [m for m in r.train_modules.values() if hasattr(m, "no_sync")]
                        with contextlib.ExitStack() as stack:
                            if micro < c.grad_accum - 1:  # exchange gradients only on the last micro-batch
                                for m in ddp:
                                    stack.enter_context(m.no_sync())
                            logs = r.training_step(r.batch((step - 1) * c.grad_accum + micro), step)
                        for k, v in logs.items():
                            window.setdefault(k, []).append(float(v))
                    if step % c.log_every == 0 or step == c.max_steps:
                        means = mean_across_ranks({k: sum(v) / len(v) for k, v in window.items()}, self.dist,
                                                  r.device)
                        lr = next(iter(r.optimizers.values())).param_groups[0]["lr"] if r.optimizers else 0.0
                        self.log({"step": step, "kind": "train", **means, "lr": lr,
                                  "time": round(time.time() - t0, 3)})
                        bar.set_postfix({k: f"{v:.4g}" for k, v in list(means.items())[:3]}, refresh=False)
                        window = {}
                    bar.update(1)
                    if c.eval_every and step % c.eval_every == 0 and step < c.max_steps:
                        last_eval = step
                        stopped_early = self.evaluate(step)
                    if c.sample_every and step % c.sample_every == 0:
                        self.sample(step)
                    periodic = bool(c.save_every and step % c.save_every == 0)
                    if periodic or stopped_early or interrupt["stop"]:
                        # the end of a run plots once, after its final evaluation
                        finishing = (step == c.max_steps or stopped_early) and not interrupt["stop"]
                        self.save(step, keep=periodic or stopped_early, plot=not finishing)
                        last_saved = step
                    if interrupt["stop"]:
                        raise Interrupted(f"interrupted at step {step}: checkpoint of step {step} saved in "
                                          f"{self.run.path} (continue with --resume)")
                    if stopped_early:
                        break
        except TrainingDiverged as e:
            bar.close()
            self.plot()
            raise TrainingDiverged(f"training diverged at step {step}: {e}; {self._where()}") from None
        except Interrupted:
            bar.close()
            raise
        except KeyboardInterrupt:
            bar.close()
            raise Interrupted(f"interrupted at step {step}; {self._where()}") from None
        bar.close()
        try:
            # the full report, unless this step's evaluation is logged already and was full
            if step != last_eval or (stopped_early and self.estimates_differ):
                self.evaluate(step, final=True)
            if step != last_saved:
                self.save(step, plot=False)
        except TrainingDiverged as e:
            self.plot()
            raise TrainingDiverged(f"training diverged by step {step}: {e}; {self._where()}") from None
        self.plot()
        samples = self.sample(None)
        barrier(self.dist)
        return {"step": step, "stopped_early": stopped_early, "seconds": time.time() - t0, "samples": samples}
