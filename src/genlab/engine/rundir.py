"""The run directory: the one on-disk format that training, loading and serving share.

    <run>/config.toml        [genlab] recipe + version, [config] resolved config
    <run>/model.safetensors  every module, keys prefixed by part ("generator.", ...)
    <run>/state.pt           everything needed to resume (module weights included, so the
                             file is self-consistent); loads with weights_only=True
    <run>/best/              model.safetensors + metrics.json of the best evaluation
    <run>/checkpoints/       step-NNNNNNN.safetensors: the last keep_checkpoints checkpoints (if > 0)
    <run>/averaged/          model.safetensors + averaged.json: their average (genlab average)
    <run>/metrics.jsonl      one JSON object per log / eval line
    <run>/plots/ samples/    PNG curves and samples
    <run>/.lock              held (flock) by the one process training in the directory; holds its PID

Every write is atomic (see io.py). Nothing here unpickles: safetensors for weights,
torch.load(weights_only=True) for trainer state.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import time
import tomllib
from pathlib import Path
from typing import Any, Iterator

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; training still works, unguarded
    fcntl = None  # type: ignore[assignment]

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .._version import __version__
from ..errors import RunDirError
from .config import to_toml
from .io import save_safetensors, save_torch, write_text

STATE_FORMAT = 1
WHICH = ("best", "last", "averaged")  # the weights a run can be loaded with
# Temp files older than this process are left by a save that was killed; younger ones may be
# another rank's (or another command's) write in progress.
_PROCESS_START = time.time()


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- layout -------------------------------------------------------------
    config_file = property(lambda self: self.path / "config.toml")
    weights_file = property(lambda self: self.path / "model.safetensors")
    state_file = property(lambda self: self.path / "state.pt")
    best_dir = property(lambda self: self.path / "best")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    averaged_dir = property(lambda self: self.path / "averaged")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    plots_dir = property(lambda self: self.path / "plots")
    samples_dir = property(lambda self: self.path / "samples")
    lock_file = property(lambda self: self.path / ".lock")

    def exists(self) -> bool:
        return self.config_file.is_file()

    def has_checkpoint(self) -> bool:
        return self.state_file.is_file()

    # -- exclusive use ---------------------------------------------------------
    def check_not_in_use(self) -> None:
        """Refuse, naming the PID, if a trainer holds the lock now (without taking it)."""
        if fcntl is None or not self.lock_file.is_file():
            return
        with open(self.lock_file, "rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = f.read(32).decode(errors="replace").strip() or "unknown"
                raise RunDirError(f"run directory {self.path} is in use by process {holder}") from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the directory (creating it) for as long as the block runs.

        A second trainer is refused with the holder's PID. The kernel drops a flock when its
        process dies, so the lock of a killed trainer is stale by construction: it is taken over.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise RunDirError(f"run directory {self.path} is in use by process {holder}") from None
                except OSError as e:  # a file system without locks (some NFS mounts): train unguarded
                    if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                        raise
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.remove_stale_temp_files()
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def remove_stale_temp_files(self) -> list[Path]:
        """Temp files of saves killed mid-write (see io.atomic_write), i.e. older than this
        process; call only under lock()."""
        stale = [p for p in self.path.rglob(".*.tmp") if p.is_file() and p.stat().st_mtime < _PROCESS_START]
        for p in stale:
            with contextlib.suppress(OSError):
                p.unlink()
        return stale

    # -- config ---------------------------------------------------------------
    def write_config(self, recipe: str, config: dict[str, Any]) -> None:
        meta = {"recipe": recipe, "version": __version__}
        write_text(self.config_file, to_toml({"genlab": meta, "config": config}))

    def read_config(self) -> tuple[str, dict[str, Any]]:
        """Return (recipe name, config dict); a RunDirError if this is not a run directory."""
        if not self.path.exists():
            raise RunDirError(f"run directory not found: {self.path}")
        if not self.config_file.is_file():
            raise RunDirError(f"not a genlab run directory (no config.toml): {self.path}")
        try:
            data = tomllib.loads(self.config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise RunDirError(f"corrupt config.toml in {self.path}: {e}") from None
        meta, config = data.get("genlab"), data.get("config")
        if not isinstance(meta, dict) or not isinstance(meta.get("recipe"), str):
            raise RunDirError(f"corrupt config.toml in {self.path}: [genlab] must hold recipe = \"NAME\"")
        if not isinstance(config, dict):
            raise RunDirError(f"corrupt config.toml in {self.path}: [config] must be a table of config keys")
        return meta["recipe"], dict(config)

    # -- weights ----------------------------------------------------------------
    @staticmethod
    def module_tensors(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
        return {f"{part}.{k}": v for part, m in modules.items() for k, v in m.state_dict().items()}

    def save_weights(self, modules: dict[str, torch.nn.Module], step: int, best: bool = False) -> None:
        target = (self.best_dir if best else self.path) / "model.safetensors"
        save_safetensors(self.module_tensors(modules), target, metadata={"step": str(step), "format": "genlab"})

    def weights_path(self, which: str = "best") -> Path:
        """`best` falls back to the last checkpoint when the run kept no best one; `averaged` is
        the average that `genlab average` wrote (engine/checkpoints.py)."""
        if which not in WHICH:
            raise RunDirError(f"which must be one of {', '.join(WHICH)}, got {which!r}")
        if which == "averaged":
            averaged = self.averaged_dir / "model.safetensors"
            if not averaged.is_file():
                raise RunDirError(f"{self.path} has no averaged checkpoint: make one with "
                                  "genlab average RUN --last N (the run needs keep_checkpoints >= N)")
            return averaged
        best = self.best_dir / "model.safetensors"
        return best if which == "best" and best.is_file() else self.weights_file

    def load_weights(self, modules: dict[str, torch.nn.Module], which: str = "best") -> int:
        """Load weights into `modules`; return the step they were saved at."""
        path = self.weights_path(which)
        if not path.is_file():
            raise RunDirError(f"no weights in {self.path} (was training started?)")
        try:
            tensors = load_file(str(path))
            with open(path, "rb") as f:  # the header's metadata holds the step
                n = int.from_bytes(f.read(8), "little")
                meta = json.loads(f.read(n)).get("__metadata__", {}) or {}
        except (SafetensorError, OSError, ValueError, json.JSONDecodeError, AttributeError) as e:
            raise RunDirError(f"corrupt or truncated checkpoint {path}: {str(e).splitlines()[0]}") from None
        try:
            step = int(meta.get("step", 0))
        except (TypeError, ValueError):
            raise RunDirError(f"corrupt or truncated checkpoint {path}: its metadata step = "
                              f"{str(meta.get('step'))[:20]!r} is not a whole number") from None
        check_finite_tensors(tensors, str(path))
        load_prefixed(modules, tensors, str(path))
        return step

    # -- trainer state ------------------------------------------------------------
    def save_state(self, state: dict[str, Any]) -> None:
        save_torch({"format": STATE_FORMAT, **state}, self.state_file)

    def load_state(self) -> dict[str, Any]:
        if not self.state_file.is_file():
            raise RunDirError(f"nothing to resume in {self.path}: no state.pt")
        try:
            state = torch.load(self.state_file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # objects other than tensors and plain containers
            raise RunDirError(f"{self.state_file} is not a genlab state file (it holds objects genlab never "
                              "writes); refused") from None
        except Exception as e:  # truncated zip, wrong magic...
            raise RunDirError(f"corrupt or truncated checkpoint {self.state_file}: {str(e).splitlines()[0]}") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise RunDirError(f"{self.state_file} was written by an incompatible genlab version")
        shape = {"step": int, "modules": dict, "optimizers": dict, "schedulers": dict, "rng": dict}
        bad = [k for k, tp in shape.items() if not isinstance(state.get(k), tp) or isinstance(state.get(k), bool)]
        if bad or state["step"] < 0 or not all(isinstance(sd, dict) for sd in state["modules"].values()):
            raise RunDirError(f"{self.state_file} is not a complete genlab state file "
                              f"(bad or missing: {', '.join(bad) or 'modules'}); refused")
        return state

    # -- metrics ------------------------------------------------------------------
    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete lines of metrics.jsonl (a line cut by a kill is ignored)."""
        if not self.metrics_file.is_file():
            return []
        rows = []
        for line in self.metrics_file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate_metrics(self, step: int) -> None:
        """On resume, drop lines logged after the checkpoint so the log matches an uninterrupted run."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        write_text(self.metrics_file, "".join(json.dumps(r) + "\n" for r in rows))


def check_finite_tensors(tensors: dict[str, torch.Tensor], source: str) -> None:
    """Weights with inf/NaN (a diverged run) would sample garbage: say so instead."""
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise RunDirError(f"weights in {source} are not finite ({', '.join(bad[:3])}"
                          f"{', ...' if len(bad) > 3 else ''}): the run diverged; retrain with a lower lr")


def load_prefixed(modules: dict[str, torch.nn.Module], tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load 'part.key' tensors into each module, strictly: a missing or unexpected key, or a
    different shape or dtype, is an error that names the keys."""
    for part, module in modules.items():
        own = {k[len(part) + 1:]: v for k, v in tensors.items() if k.startswith(part + ".")}
        expected = module.state_dict()
        problems = [f"missing {k}" for k in expected if k not in own]
        problems += [f"unexpected {k}" for k in own if k not in expected]
        for k, t in own.items():
            want = expected.get(k)
            if want is None:
                continue
            if tuple(t.shape) != tuple(want.shape):
                problems.append(f"{k} has shape {list(t.shape)}, the model needs {list(want.shape)}")
            elif t.dtype != want.dtype:
                problems.append(f"{k} is {str(t.dtype).removeprefix('torch.')}, "
                                f"the model needs {str(want.dtype).removeprefix('torch.')}")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise RunDirError(f"weights in {source} do not fit part '{part}': {'; '.join(problems[:3])}{more}")
        module.load_state_dict(own, strict=True)
