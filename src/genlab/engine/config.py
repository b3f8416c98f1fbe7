"""Typed configs: a dataclass per recipe, filled from presets, a TOML/YAML file and --set.

Order of precedence (later wins): dataclass defaults < preset < config file < --set.
Unknown keys and values of the wrong type are rejected with a message naming the key.

Ranges are checked when a config is built, before anything is written, by one rule set:
every number is finite and fits in 64 bits; a training config's numbers are also >= 0
unless its class says otherwise; and each config class declares the ranges of its own keys
in a `bounds` table of interval strings ("[1, inf)", "(0, 1)", "(-inf, inf)"), merged along
its base classes. `resume_keys` names the keys a `--resume` may change (everything else
would change the model, its tokenizer or its data, and is refused).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

from ..errors import ConfigError


@dataclass
class TrainConfig:
    """Keys every recipe accepts. Recipes subclass this and add their own."""

    seed: int = 0                   # seeds initialisation, batches and noise (same seed, same run)
    device: str = "auto"            # auto | cpu | cuda | cuda:N | mps
    max_steps: int = 1000           # optimizer steps to train for
    batch_size: int = 64            # global batch size (split across DDP ranks)
    lr: float = 1e-3                # learning rate (peak, when a schedule is set)
    save_every: int = 200           # checkpoint cadence in steps (0 = only at the end)
    keep_checkpoints: int = 0       # keep the last N checkpoints in RUN/checkpoints/ for `genlab average` (0 = none)
    eval_every: int = 200           # evaluation cadence in steps (0 = only at the end)
    eval_estimate: bool = True      # evaluations before the last step use the recipe's cheaper periodic_eval settings
    sample_every: int = 0           # sample-hook cadence in steps (0 = never during training)
    log_every: int = 10             # metrics.jsonl row cadence in steps (means over the window)
    grad_clip: float = 0.0          # max global grad norm (0 = off)
    grad_accum: int = 1             # micro-batches per optimizer step
    lr_schedule: str = "constant"   # constant | cosine | noam
    warmup_steps: int = 0           # linear lr warmup from 0 over this many steps
    min_lr_ratio: float = 0.1       # cosine decays to lr * min_lr_ratio
    bf16: bool = False              # bf16 autocast for forward passes
    early_stop_metric: str = ""     # an evaluate() key; empty = no early stopping
    early_stop_mode: str = "min"    # min | max
    early_stop_patience: int = 0    # evaluations without improvement before stopping (0 = never stop)
    tensorboard: bool = False       # also write TensorBoard event files (needs the tensorboard package)
    threads: int = 0                # CPU threads for torch ops (0 = automatic: engine/threads.py); N forces N
    data: str = ""                  # path to the user's data; empty = embedded default (stored absolute)
    preset: str = ""                # name of the preset applied (recorded for info)

    bounds: ClassVar[dict[str, str]] = {
        "seed": "[0, 2**63)", "max_steps": "[1, inf)", "batch_size": "[1, inf)", "lr": "(0, inf)",
        "log_every": "[1, inf)", "grad_accum": "[1, inf)", "min_lr_ratio": "[0, 1]", "threads": "[0, 4096]",
    }
    # What a --resume may change: the schedule and bookkeeping, never the model, tokenizer or data.
    resume_keys: ClassVar[tuple[str, ...]] = (
        "max_steps", "lr", "lr_schedule", "warmup_steps", "min_lr_ratio", "grad_clip", "save_every",
        "keep_checkpoints", "eval_every", "eval_estimate", "sample_every", "log_every", "early_stop_metric",
        "early_stop_mode", "early_stop_patience", "tensorboard", "threads", "device", "preset")
    # Keys holding file or folder paths: stored absolute so a run works from any directory.
    path_keys: ClassVar[tuple[str, ...]] = ("data",)
    # What the evaluations during training change (eval_estimate): a smaller validation subset,
    # fewer samples, so that they cost a small share of the run; the final evaluation and
    # `genlab eval` use the config as it is. A key set away from its default keeps its value.
    periodic_eval: ClassVar[dict[str, Any]] = {}
    # Networks that step in turn (a GAN's D and G) cannot accumulate: the micro-batches would mix them.
    alternating_steps: ClassVar[bool] = False
    # Keys added after runs were saved, whose new default would change the model: the value a run
    # saved without the key had, so that it keeps loading (applied only to saved configs).
    saved_defaults: ClassVar[dict[str, Any]] = {}


# Keys that mean the same in every recipe that has them (a class's own `bounds` win).
COMMON_BOUNDS: dict[str, str] = {
    "dropout": "[0, 1)", "val_fraction": "(0, 1)", "beta1": "[0, 1)", "beta2": "[0, 1)", "ema_decay": "[0, 1]",
    "n": "[1, 100000]", "seed": "[0, 2**63)",
}
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


C = TypeVar("C", bound=TrainConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert `value` (from TOML/YAML or a --set string) to the field type `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        # Members in declared order: `str | list[str]` keeps a string whole, takes a list as a list.
        for i, arg in enumerate(args):
            try:
                return _coerce(key, value, arg)
            except ConfigError:
                if i == len(args) - 1:
                    raise
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (str,)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ConfigError(f"config key '{key}': cannot parse list {value!r}") from None
            else:
                value = [v for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' expects a list, got {value!r}")
        items = [_coerce(key, v, item_tp) for v in value]
        return items if origin is list else tuple(items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"config key '{key}' expects true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' expects an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    f = None
                if f is not None and f.is_integer():
                    return int(f)
        raise ConfigError(f"config key '{key}' expects an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' expects a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}' expects a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{key}' expects a string, got {value!r}")
    raise ConfigError(f"config key '{key}' has an unsupported type {_type_name(tp)}")


def apply_overrides(config: C, values: Mapping[str, Any], source: str = "") -> C:
    """Return a copy of `config` with `values` applied; unknown keys or bad types raise ConfigError."""
    hints = typing.get_type_hints(type(config))
    known = {f.name for f in fields(config)}
    updates = {}
    for key, value in values.items():
        if key not in known:
            where = f" in {source}" if source else ""
            raise ConfigError(f"unknown config key '{key}'{where} (known keys: {', '.join(sorted(known))})")
        updates[key] = _coerce(key, value, hints[key])
    new = dataclasses.replace(config, **updates)
    try:
        validate(new)
    except ConfigError as e:
        raise ConfigError(f"{e} (in {source})" if source else str(e)) from None
    return new


def parse_set(items: list[str]) -> dict[str, str]:
    """Parse ['key=value', ...] from the command line."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad --set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def read_config_file(path: str | Path, recipe: str | None = None) -> dict[str, Any]:
    """Read a TOML or YAML config file into a flat dict of config keys.

    Keys go at the top level. One other shape is accepted, a saved run's config.toml:
    a [config] table of keys beside a [genlab] table (recipe, version) whose recipe must
    match `recipe`. Any other table is refused by name, never ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError("YAML configs need PyYAML: pip install 'genlab[yaml]'") from None
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as e:
        raise ConfigError(f"cannot parse config file {path}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # yaml.YAMLError and friends
        raise ConfigError(f"cannot parse config file {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of key = value pairs")
    if isinstance(data.get("config"), dict):  # a saved run's config.toml
        meta = data.get("genlab", {})
        extra = [k for k in data if k not in ("config", "genlab")]
        if extra or not isinstance(meta, dict):
            raise ConfigError(f"config file {path}: a [config] table goes only with [genlab]; "
                              f"found {', '.join(extra) or 'genlab = ' + repr(meta)}")
        if recipe and meta.get("recipe", recipe) != recipe:
            raise ConfigError(f"config file {path} is for recipe {meta.get('recipe')!r}, not '{recipe}'")
        data = data["config"]
    tables = [k for k, v in data.items() if isinstance(v, dict)]
    if tables:
        raise ConfigError(f"config file {path}: table [{tables[0]}] is not a config section (write its keys "
                          "at the top level, e.g. lr = 0.001; the only table accepted is a saved run's "
                          "[config] with its [genlab])")
    return {str(k): v for k, v in data.items()}


def _bound(text: str) -> float:
    text = text.strip()
    if "**" in text:
        base, exp = text.split("**")
        return int(base) ** int(exp)
    return float(text)


def _interval(spec: str) -> tuple[float, bool, float, bool]:
    """'[1, inf)' -> (low, low inclusive, high, high inclusive)."""
    m = re.fullmatch(r"\s*([\[(])([^,]+),([^\])]+)([\])])\s*", spec)
    if not m:
        raise ValueError(f"bad bounds spec {spec!r}")
    return _bound(m[2]), m[1] == "[", _bound(m[3]), m[4] == "]"


def class_bounds(cls: type) -> dict[str, str]:
    """The `bounds` tables of cls and its bases, the most derived winning."""
    merged = dict(COMMON_BOUNDS)
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("bounds", {}))
    return merged


def check_ranges(config: Any) -> None:
    """The generic rules: finite, 64-bit, inside the declared interval (training configs: >= 0 by default)."""
    bounds = class_bounds(type(config))
    training = isinstance(config, TrainConfig)
    default, what = ("[0, inf)", "invalid config") if training else ("(-inf, inf)", "invalid option")
    for f in fields(config):
        value = getattr(config, f.name)
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{what}: {f.name} must be a finite number, got {v}")
            if isinstance(v, int) and not -2**63 <= v < 2**63:
                raise ConfigError(f"{what}: {f.name} = {v} does not fit in 64 bits")
            spec = bounds.get(f.name, default)
            lo, lo_in, hi, hi_in = _interval(spec)
            if not ((v >= lo if lo_in else v > lo) and (v <= hi if hi_in else v < hi)):
                raise ConfigError(f"{what}: {f.name} must be in {spec}, got {v}")


def validate(config: TrainConfig) -> None:
    """The generic range rules, then the checks shared by every recipe, then the class's own `check()`."""
    check_ranges(config)
    if not isinstance(config, TrainConfig):  # e.g. sampling options: only their own check()
        check = getattr(config, "check", None)
        if callable(check):
            check()
        return
    checks = [
        (DEVICE.fullmatch(config.device) is not None, f"device must be auto, cpu, cuda, cuda:N or mps, "
                                                       f"got {config.device!r}"),
        (config.lr_schedule in ("constant", "cosine", "noam"), "lr_schedule must be constant, cosine or noam"),
        (config.early_stop_mode in ("min", "max"), "early_stop_mode must be min or max"),
        (config.grad_accum == 1 or not config.alternating_steps,
         "this recipe's networks step in turn, so it needs grad_accum=1 (raise batch_size instead)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"invalid config: {message}")
    check = getattr(config, "check", None)
    if callable(check):
        check()


def estimate_config(config: C) -> C:
    """The config of an evaluation during training: the class's periodic_eval values for the
    keys still at their defaults (eval_estimate=true), else `config` itself."""
    cheap = type(config).periodic_eval if config.eval_estimate else {}
    defaults = type(config)()
    changes = {k: v for k, v in cheap.items() if getattr(config, k) == getattr(defaults, k)}
    return dataclasses.replace(config, **changes) if changes else config


def resume_changes(saved: TrainConfig, new: TrainConfig) -> tuple[list[str], list[str]]:
    """(keys a resume may change that did, keys it may not change that did)."""
    allowed = set(type(saved).resume_keys)
    changed = [f.name for f in fields(saved) if getattr(saved, f.name) != getattr(new, f.name)]
    return [k for k in changed if k in allowed], [k for k in changed if k not in allowed]


def to_toml(table: Mapping[str, Any]) -> str:
    """Write a flat (one level of [tables]) dict of scalars and lists as TOML."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)  # a JSON string is a valid TOML basic string
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if v is None:
            return '"none"'
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    lines, tables = [], []
    for k, v in table.items():
        (tables.append((k, v)) if isinstance(v, Mapping) else lines.append(f"{k} = {value(v)}"))
    for name, sub in tables:
        lines += ["", f"[{name}]"] + [f"{k} = {value(v)}" for k, v in sub.items()]
    return "\n".join(lines) + "\n"


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
