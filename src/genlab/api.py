"""The Python face of genlab: train(), load() and the Run they return.

The CLI is a thin layer over these functions, so both always agree.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from .engine.config import TrainConfig, apply_overrides, config_dict, parse_set, read_config_file, validate
from .engine.distributed import init_distributed
from .engine.rundir import RunDir
from .engine.threads import configure_threads
from .engine.trainer import Trainer, resolve_device
from .data.text import check_data_path
from .errors import ConfigError, RunDirError
from .recipes import Recipe, get_recipe


def build_config(recipe: type[Recipe], preset: str | None = None, config_file: str | Path | None = None,
                 overrides: Mapping[str, Any] | list[str] | None = None, base: Mapping[str, Any] | None = None,
                 data: str | Path | None = None) -> TrainConfig:
    """defaults < base (a saved run's config) < preset < config file < overrides < data."""
    config = recipe.Config()
    if base:
        config = apply_overrides(config, base, "the run's config.toml")
    if preset:
        if preset not in recipe.presets:
            raise ConfigError(f"unknown preset '{preset}' for {recipe.name} "
                              f"(available: {', '.join(recipe.presets) or 'none'})")
        config = apply_overrides(config, {**recipe.presets[preset], "preset": preset}, f"preset {preset}")
    if config_file:
        config = apply_overrides(config, read_config_file(config_file), str(config_file))
    if overrides:
        values = parse_set(overrides) if isinstance(overrides, list) else dict(overrides)
        config = apply_overrides(config, values, "--set")
    if data is not None:
        config = dataclasses.replace(config, data=str(data))
    validate(config)
    return config


def _new_run_dir(recipe: str) -> Path:
    root = Path("runs")
    path, i = root / recipe, 1
    while RunDir(path).exists():
        i += 1
        path = root / f"{recipe}-{i}"
    return path


class Run:
    """A trained (or imported) model in its run directory."""

    def __init__(self, path: Path, recipe: Recipe, result: dict[str, Any] | None = None):
        self.path = Path(path)
        self.recipe = recipe
        self.result = result or {}

    @property
    def config(self) -> TrainConfig:
        return self.recipe.config

    def sample(self, out: str | Path | None = None, **options: Any) -> Any:
        """Samples as Python objects, or, with `out`, as files written there (returns their paths)."""
        opts = apply_overrides(self.recipe.Sample(), options, "sample options")
        with self.recipe.eval_mode():
            if out is None:
                return self.recipe.generate(opts)
            return self.recipe.write_samples(Path(out), opts)

    def evaluate(self) -> dict[str, float]:
        """The recipe's metrics on held-out data."""
        self.recipe.load_data_once()
        with self.recipe.eval_mode():
            return self.recipe.evaluate()

    def info(self) -> dict[str, Any]:
        run = RunDir(self.path)
        rows = run.read_metrics()
        train = [r for r in rows if r.get("kind") == "train"]
        evals = [r for r in rows if r.get("kind") == "eval"]
        params = {k: sum(p.numel() for p in m.parameters()) for k, m in self.recipe.modules.items()}
        return {
            "run": str(self.path), "recipe": self.recipe.name,
            "step": train[-1]["step"] if train else 0,
            "parameters": params,
            "last_train": train[-1] if train else None,
            "last_eval": evals[-1] if evals else None,
            "best": (run.best_dir / "metrics.json").read_text() if (run.best_dir / "metrics.json").is_file() else None,
            "config": config_dict(self.config),
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
    if resume:
        if out is None:
            raise ConfigError("--resume needs the run directory: --out DIR")
        run = RunDir(out)
        saved_recipe, saved = run.read_config()
        if saved_recipe != recipe:
            raise RunDirError(f"run directory {out} was made by recipe '{saved_recipe}', not '{recipe}'")
        cfg = build_config(cls, None, config_file, {**(config_values or {}), **_as_dict(overrides)}, base=saved,
                           data=data)
    else:
        run = RunDir(out if out is not None else _new_run_dir(recipe))
        if run.exists():
            raise RunDirError(f"run directory {run.path} already holds a run: use --resume to continue it "
                              "or --out to choose another directory")
        cfg = build_config(cls, preset, config_file, {**(config_values or {}), **_as_dict(overrides)}, data=data)
    if cfg.data:
        check_data_path(cfg.data)

    device = resolve_device(cfg.device)
    dist = init_distributed(device)
    if dist.enabled and device.type == "cuda":
        import torch

        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    r = cls(cfg, device, dist, run.path)
    r.setup(training=True, resume=resume)
    configure_threads(cfg.threads, r.modules, announce=dist.is_main)
    if dist.is_main:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(cls.name, config_dict(cfg))
        r.save_artifacts(run.path)
    result = Trainer(r, run, dist, progress=progress).fit(resume=resume)
    r.set_mode(False)
    return Run(run.path, r, result)


def _as_dict(overrides: Mapping[str, Any] | list[str] | None) -> dict[str, Any]:
    if not overrides:
        return {}
    return parse_set(overrides) if isinstance(overrides, list) else dict(overrides)


def load(run_dir: str | Path, which: str = "best", device: str = "auto") -> Run:
    """Load a run directory for sampling and evaluation (the best checkpoint when one was kept)."""
    run = RunDir(run_dir)
    name, saved = run.read_config()
    cls = get_recipe(name)
    cfg = build_config(cls, base={k: v for k, v in saved.items()})
    dev = resolve_device(device)
    cfg = dataclasses.replace(cfg, device=str(dev))
    r = cls(cfg, dev, run_dir=run.path)
    r.setup(training=False)
    configure_threads(cfg.threads, r.modules)
    run.load_weights(r.modules, which)
    r.set_mode(False)
    return Run(run.path, r)


def import_gpt2(src_dir: str | Path, out: str | Path) -> Path:
    """Turn a Hugging Face GPT-2 checkpoint folder into a run directory of the gpt recipe."""
    from .importers.gpt2 import import_gpt2 as _import

    return _import(src_dir, out)


def list_recipes() -> list[dict[str, str]]:
    from .recipes import REGISTRY

    out = []
    for name in REGISTRY:
        cls = get_recipe(name)
        out.append({"name": name, "summary": cls.summary, "default_data": cls.default_data,
                    "presets": ", ".join(cls.presets)})
    return out

