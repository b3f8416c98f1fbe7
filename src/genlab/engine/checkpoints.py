"""Periodic checkpoints kept for averaging, and their average.

With `keep_checkpoints=N` the trainer copies the weights of every checkpoint it writes (every
`save_every` steps, and the last) to RUN/checkpoints/step-NNNNNNN.safetensors and keeps the N
newest. `average_run(RUN, last=K)` averages the K newest into RUN/averaged/model.safetensors,
which `genlab.load(RUN, which="averaged")` (`--which averaged` on the command line) loads.

Averaging the weights of the last few checkpoints of one run (Vaswani et al. 2017 average the
last 5 or 20) smooths the noise of the final updates; it usually gains a fraction of a BLEU
point to about one for translation, for no training cost. It is only meaningful for checkpoints
of the same run taken close together, so only the run's own kept checkpoints are averaged.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import RunDirError
from .io import save_safetensors, write_text
from .rundir import RunDir, check_finite_tensors

NAME = re.compile(r"step-(\d+)\.safetensors")


def checkpoint_path(run: RunDir, step: int) -> Path:
    return run.checkpoints_dir / f"step-{step:07d}.safetensors"


def kept_checkpoints(run: RunDir) -> list[tuple[int, Path]]:
    """(step, file) of every kept checkpoint, oldest first."""
    if not run.checkpoints_dir.is_dir():
        return []
    found = [(int(m[1]), p) for p in run.checkpoints_dir.iterdir() if (m := NAME.fullmatch(p.name))]
    return sorted(found)


def keep_checkpoint(run: RunDir, tensors: dict[str, torch.Tensor], step: int, keep: int) -> None:
    """Write this step's weights among the kept checkpoints, then drop all but the `keep` newest."""
    save_safetensors(tensors, checkpoint_path(run, step), metadata={"step": str(step), "format": "genlab"})
    for _, old in kept_checkpoints(run)[:-keep]:
        old.unlink(missing_ok=True)


def average_tensors(checkpoints: list[tuple[str, dict[str, torch.Tensor]]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of checkpoints (name, tensors) with the same keys, shapes and dtypes.

    Floating-point tensors are summed in float64 and cast back; other tensors (integer counters
    such as a BatchNorm's num_batches_tracked) are taken from the last checkpoint."""
    if not checkpoints:
        raise RunDirError("no checkpoints to average")
    first_name, first = checkpoints[0]
    for name, tensors in checkpoints:
        check_finite_tensors(tensors, name)
        missing, extra = sorted(set(first) - set(tensors)), sorted(set(tensors) - set(first))
        if missing or extra:
            what = "; ".join(x for x in (missing and f"lacks {', '.join(missing[:3])}",
                                         extra and f"has extra {', '.join(extra[:3])}") if x)
            raise RunDirError(f"cannot average: {name} {what} (compared with {first_name})")
        for k, t in tensors.items():
            if t.shape != first[k].shape or t.dtype != first[k].dtype:
                raise RunDirError(f"cannot average: {k} is {str(t.dtype).removeprefix('torch.')} {list(t.shape)} "
                                  f"in {name} but {str(first[k].dtype).removeprefix('torch.')} "
                                  f"{list(first[k].shape)} in {first_name}")
    last = checkpoints[-1][1]
    out = {}
    for k, t in last.items():
        if t.is_floating_point():
            total = sum(tensors[k].double() for _, tensors in checkpoints)
            out[k] = (total / len(checkpoints)).to(t.dtype)
        else:
            out[k] = t.clone()
    return out


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise RunDirError(f"corrupt or truncated checkpoint {path}: {str(e).splitlines()[0]}") from None


def average_run(run_dir: str | Path, last: int) -> Path:
    """Average the `last` newest kept checkpoints of a run into RUN/averaged/model.safetensors
    (beside it averaged.json names the steps); return the weights file."""
    run = RunDir(run_dir)
    run.read_config()  # a RunDirError unless this is a run directory
    if last < 2:
        raise RunDirError(f"--last must be >= 2 (averaging one checkpoint is that checkpoint), got {last}")
    kept = kept_checkpoints(run)
    if len(kept) < last:
        have = ", ".join(str(s) for s, _ in kept) or "none"
        raise RunDirError(f"{run.path} keeps {len(kept)} checkpoint(s) (steps: {have}); averaging the last {last} "
                          f"needs {last}: train with --set keep_checkpoints={last} (or more)")
    chosen = kept[-last:]
    tensors = average_tensors([(str(p), _read(p)) for _, p in chosen])
    steps = [s for s, _ in chosen]
    target = run.averaged_dir / "model.safetensors"
    # the step of the newest checkpoint, as `genlab sample/eval` report the step they load
    save_safetensors(tensors, target, metadata={"step": str(steps[-1]), "format": "genlab",
                                                "averaged_steps": ",".join(map(str, steps))})
    write_text(run.averaged_dir / "averaged.json", json.dumps({"steps": steps}, indent=1))
    return target
