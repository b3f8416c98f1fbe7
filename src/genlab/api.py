"""The Python face of genlab: train(), load() and the Run they return.

The CLI is a thin layer over these functions, so both always agree.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from .engine.config import (TrainConfig, apply_overrides, config_dict, parse_set, read_config_file,
                            resume_changes, validate)
from .engine.distributed import init_distributed
from .engine.rundir import RunDir
from .engine.threads import configure_threads
from .engine.trainer import Trainer, resolve_device, step_probe
from .data.text import check_data_path
from .errors import ConfigError, RunDirError
from .outputs import Output
from .recipes import REGISTRY, Recipe, get_recipe, recipe_entry


def build_config(recipe: type[Recipe], preset: str | None = None, config_file: str | Path | None = None,
                 overrides: Mapping[str, Any] | list[str] | None = None, base: Mapping[str, Any] | None = None,
                 data: str | Path | None = None, base_source: str = "the run's config.toml") -> TrainConfig:
    """defaults < base (a saved run's config) < preset < config file < overrides < data.

    Every key's range is checked here, before anything is written; paths become absolute."""
    config = recipe.Config()
    if base:
        config = apply_overrides(config, {**recipe.Config.saved_defaults, **base}, base_source)
    if preset:
        if preset not in recipe.presets:
            raise ConfigError(f"unknown preset '{preset}' for {recipe.name} "
                              f"(available: {', '.join(recipe.presets) or 'none'})")
        config = apply_overrides(config, {**recipe.presets[preset], "preset": preset}, f"preset {preset}")
    if config_file:
        config = apply_overrides(config, read_config_file(config_file, recipe.name), str(config_file))
    if overrides:
        values = parse_set(overrides) if isinstance(overrides, list) else dict(overrides)
        config = apply_overrides(config, values, "--set")
    if data is not None:
        config = dataclasses.replace(config, data=str(data))
    # Paths are stored absolute, so the run can be evaluated or resumed from any directory.
    config = dataclasses.replace(config, **{k: str(Path(getattr(config, k)).expanduser().absolute())
                                            for k in type(config).path_keys if getattr(config, k)})
    validate(config)
    return config


def _check_out(path: Path) -> None:
    """--out must be a directory or a place where one can be made."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--out {path} is a file, not a run directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise RunDirError(f"--out {path} lies under {parent}, which is a file")
            break


MAX_SHOWN = 100_000     # show_data: at most this many examples (as sampling's n)


def next_free_dir(root: Path, stem: str) -> Path:
    """root/STEM-001, -002, ...: the first free number, three digits, so writing again never
    overwrites (runs, `genlab sample` and `genlab data` folders) and a run name never reads like
    a model's (runs/gpt-2 would look like GPT-2)."""
    i = 1
    while (root / f"{stem}-{i:03d}").exists():
        i += 1
    return root / f"{stem}-{i:03d}"


def _new_run_dir(recipe: str, root: Path = Path("runs")) -> Path:
    """runs/RECIPE-001, -002, ..."""
    return next_free_dir(root, recipe)


class Run:
    """A trained (or imported) model in its run directory."""

    def __init__(self, path: Path, recipe: Recipe, result: dict[str, Any] | None = None):
        self.path = Path(path)
        self.recipe = recipe
        self.result = result or {}

    @property
    def config(self) -> TrainConfig:
        return self.recipe.config

    def sample(self, out: str | Path | None = None, **options: Any) -> Output | list[Path]:
        """Samples as a typed output (genlab.outputs: Texts, Images, Points, ...), or, with `out`,
        written as files there (returns their paths).

        Safe to call from several threads at once: modules stay in eval mode (set at load), no
        gradients are recorded, and random draws come from generators seeded by `seed`, so a
        call's result depends only on its options."""
        opts = apply_overrides(self.recipe.Sample(), options, "sample options")
        with torch.no_grad():
            return self.recipe.generate(opts) if out is None else self.recipe.write_samples(Path(out), opts)

    def stream(self, **options: Any) -> Iterator[str]:
        """Text pieces of one sample while it is decoded (text recipes; options as for sample)."""
        stream = getattr(self.recipe, "stream", None)
        if stream is None:
            raise ConfigError(f"recipe {self.recipe.name} does not stream text (streaming is for language models)")
        return stream(apply_overrides(self.recipe.Sample(), options, "sample options"))

    def evaluate(self) -> dict[str, float]:
        """The recipe's metrics on held-out data."""
        self.recipe.load_data_once()
        with self.recipe.eval_mode():
            return self.recipe.evaluate()

    def info(self) -> dict[str, Any]:
        """What the run is: recipe, steps, parameters, last and best metrics, data, config changes."""
        run = RunDir(self.path)
        rows = run.read_metrics()
        train = [r for r in rows if r.get("kind") == "train"]
        evals = [r for r in rows if r.get("kind") == "eval"]
        params = {k: sum(p.numel() for p in m.parameters()) for k, m in self.recipe.modules.items()}
        best_file = run.best_dir / "metrics.json"
        _, saved = run.read_config()
        defaults = config_dict(self.recipe.Config())
        return {
            "run": str(self.path), "recipe": self.recipe.name,
            "step": train[-1]["step"] if train else 0,
            "parameters": params,
            "data": saved.get("data") or f"embedded default: {recipe_entry(self.recipe.name).default_data}",
            "last_train": train[-1] if train else None,
            "last_eval": evals[-1] if evals else None,
            "best": json.loads(best_file.read_text()) if best_file.is_file() else None,
            "config_changes": {k: v for k, v in saved.items() if k in defaults and defaults[k] != v},
            "config": saved,
        }


def train(recipe: str, data: str | Path | None = None, config: str | Path | Mapping[str, Any] | None = None,
          overrides: Mapping[str, Any] | list[str] | None = None, out: str | Path | None = None,
          resume: bool = False, preset: str | None = None, progress: bool = True) -> Run:
    """Train `recipe` (on the embedded default unless `data` is given) into a run directory.

    `config` is a TOML/YAML path or a dict of keys; `overrides` are `KEY=VALUE` strings or a dict.
    With `resume=True`, `out` is an existing run: it continues from its last checkpoint.
    """
    cls = get_recipe(recipe)
    config_file, config_values = (None, None)
    if isinstance(config, Mapping):
        config_values = dict(config)
    else:
        config_file = config
    values = {**(config_values or {}), **_as_dict(overrides)}
    if resume:
        if out is None:
            raise ConfigError("--resume needs the run directory: --out DIR")
        run = RunDir(out)
        run.check_not_in_use()
        saved_recipe, saved = run.read_config()
        if saved_recipe != recipe:
            raise RunDirError(f"run directory {out} was made by recipe '{saved_recipe}', not '{recipe}'")
        before = build_config(cls, base=saved, base_source=str(run.config_file))
        cfg = build_config(cls, preset, config_file, values, base=saved, data=data, base_source=str(run.config_file))
        if run.has_checkpoint():  # continuing a checkpoint: only the schedule and bookkeeping may change
            run.load_state()  # a corrupt or foreign state.pt is refused before anything is written
            _, refused = resume_changes(before, cfg)
            if refused:
                changes = ", ".join(f"{k} ({getattr(before, k)!r} -> {getattr(cfg, k)!r})" for k in refused)
                raise ConfigError(f"--resume cannot change {changes}: it would change the model, its tokenizer "
                                  f"or its data (a resume may change {', '.join(type(cfg).resume_keys)}); "
                                  "train a new run with another --out instead")
    else:
        run = RunDir(out if out is not None else _new_run_dir(recipe))
        _check_out(run.path)
        run.check_not_in_use()
        if run.exists():
            raise RunDirError(f"run directory {run.path} already holds a run: use --resume to continue it "
                              "or --out to choose another directory")
        cfg = build_config(cls, preset, config_file, values, data=data)
    if cfg.data:
        check_data_path(cfg.data)

    device = resolve_device(cfg.device)
    dist = init_distributed(device)
    if dist.enabled and device.type == "cuda":
        import torch

        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    created = not run.path.exists()
    lock = run.lock() if dist.is_main else contextlib.nullcontext()
    try:
        with lock:
            if dist.is_main and not resume and run.exists():  # another process made it while we validated
                raise RunDirError(f"run directory {run.path} already holds a run: use --resume to continue it")
            r = cls(cfg, device, dist, run.path)
            r.setup(training=True, resume=resume)
            # automatic threads time the real step (on CPU, in one process: torchrun's ranks would
            # time different numbers of steps, and a step may hold a collective)
            probe = cfg.threads == 0 and device.type == "cpu" and not dist.enabled
            with step_probe(r) if probe else contextlib.nullcontext() as step:
                configure_threads(cfg.threads, step=step, announce=dist.is_main)
            trainer = Trainer(r, run, dist, progress=progress)
            trainer.prepare(resume)  # restores the checkpoint: weights that do not fit fail here
            if dist.is_main:  # only now is the run's config (re)written
                run.write_config(cls.name, config_dict(cfg))
                r.save_artifacts(run.path)
            result = trainer.fit(resume=resume)
    except BaseException:
        if created and dist.is_main and not run.exists():
            shutil.rmtree(run.path, ignore_errors=True)  # leave no half-made directory behind
        raise
    r.set_mode(False)
    return Run(run.path, r, result)


def _as_dict(overrides: Mapping[str, Any] | list[str] | None) -> dict[str, Any]:
    if not overrides:
        return {}
    return parse_set(overrides) if isinstance(overrides, list) else dict(overrides)


def load(run_dir: str | Path, which: str = "best", device: str = "auto", weights: str = "float32") -> Run:
    """Load a run directory for sampling and evaluation: `which` is "best" (the best checkpoint
    when one was kept, else the last), "last", or "averaged" (what `average` wrote).
    A language model's linear layers are laid out for decoding (genlab.sampling.weights, in
    place, inference only): weights="float32" transposed, "float16" in half the bytes for
    faster decoding one sequence at a time (BENCHMARKS.md gives speed and agreement). Other
    recipes ignore `weights`."""
    from .sampling.weights import check_weights_dtype, lay_out_for_decoding

    check_weights_dtype(weights)
    run = RunDir(run_dir)
    name, saved = run.read_config()
    run.weights_path(which)  # an unknown or missing `which` fails before the data is read
    cls = get_recipe(name)
    cfg = build_config(cls, base=saved, base_source=str(run.config_file))
    dev = resolve_device(device)
    cfg = dataclasses.replace(cfg, device=str(dev))
    r = cls(cfg, dev, run_dir=run.path)
    r.setup(training=False)
    configure_threads(cfg.threads)
    run.load_weights(r.modules, which)
    r.set_mode(False)
    if hasattr(r, "language_model"):
        lay_out_for_decoding(r.language_model(), weights)
    return Run(run.path, r)


def average(run_dir: str | Path, last: int = 5) -> Path:
    """Average the weights of the run's `last` newest kept checkpoints (a run trained with
    keep_checkpoints >= last) into RUN/averaged/, loadable with load(run_dir, which="averaged").
    Every recipe's weights average the same way (engine/checkpoints.py); returns the weights file."""
    from .engine.checkpoints import average_run

    RunDir(run_dir).check_not_in_use()
    return average_run(run_dir, last)


def show_data(recipe: str, data: str | Path | None = None,
              overrides: Mapping[str, Any] | list[str] | None = None, n: int | None = None) -> Output:
    """What `recipe` trains on, as a typed output (image grids with their labels, text excerpts,
    points with their plot, MIDI pieces...): the first `n` training examples of its embedded
    default dataset, or of `data`, after the config keys in `overrides`. Trains nothing."""
    cls = get_recipe(recipe)
    if n is not None and not 1 <= n <= MAX_SHOWN:
        raise ConfigError(f"n must be >= 1 and <= {MAX_SHOWN:,}, got {n}")
    cfg = build_config(cls, overrides=overrides, data=data)
    if cfg.data:
        check_data_path(cfg.data)
    configure_threads(cfg.threads)
    r = cls(cfg, "cpu")
    with torch.no_grad():
        return r.show_data(n)


def import_gpt2(src_dir: str | Path, out: str | Path) -> Path:
    """Turn a Hugging Face GPT-2 checkpoint folder into a run directory of the gpt recipe."""
    from .importers.gpt2 import import_gpt2 as _import

    return _import(src_dir, out)


def list_recipes() -> list[dict[str, str]]:
    """Name, summary and default data of every recipe (imports no recipe module)."""
    return [{"name": name, "summary": e.summary, "default_data": e.default_data} for name, e in REGISTRY.items()]
