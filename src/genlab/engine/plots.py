"""PNG plots of metrics.jsonl: one panel per logged quantity, train and eval lines.

What is not a curve stays out of the picture: a learning rate that never changes, counts such
as `n_test`, and baselines (`<metric>_untrained`, `majority_baseline`), which are drawn as a
dashed reference line in their metric's panel instead. A series with one point is a marker
with its value written beside it.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .io import write_bytes

SKIPPED_KEYS = ("step", "kind", "time", "lr_scale")
COUNTS = ("n_test",)                                   # sizes of what was measured, not measurements
BASELINES = {"majority_baseline": "accuracy"}          # baseline key -> the metric it is a baseline of
UNTRAINED = "_untrained"                               # <metric>_untrained: the same metric, untrained model


def _baseline_of(key: str) -> str | None:
    if key in BASELINES:
        return BASELINES[key]
    return key[:-len(UNTRAINED)] if key.endswith(UNTRAINED) else None


def _series(rows: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        step, kind = row.get("step"), row.get("kind", "train")
        for key, value in row.items():
            if key in SKIPPED_KEYS or key in COUNTS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            xs, ys = series.setdefault(f"{kind}/{key}", ([], []))
            xs.append(step)
            ys.append(value)
    return series


def panels(rows: list[dict[str, Any]]) -> tuple[dict[str, tuple[list[float], list[float]]],
                                                dict[str, tuple[str, float]]]:
    """What plot_metrics draws: {"kind/key": (steps, values)} per panel, and the reference lines
    {"kind/metric": (baseline key, its last value)}."""
    series = _series(rows)
    baselines = {}
    for name in list(series):
        kind, key = name.split("/", 1)
        base = _baseline_of(key)
        if base is not None:
            baselines[f"{kind}/{base}"] = (key, series.pop(name)[1][-1])
        elif key == "lr" and len(set(series[name][1])) == 1:   # a constant learning rate says nothing
            series.pop(name)
    return series, baselines


def plot_metrics(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Plot every numeric key against `step`; returns the path, or None with nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series, baselines = panels(rows)
    if not series:
        return None
    names = sorted(series, key=lambda k: (not k.startswith("train/"), k))
    cols = min(3, len(names))
    rows_n = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.0 * rows_n), squeeze=False)
    for ax, name in zip(axes.flat, names):
        xs, ys = series[name]
        if len(xs) == 1:
            ax.plot(xs, ys, "o", markersize=6)
            ax.annotate(f"{ys[0]:.4g}", (xs[0], ys[0]), textcoords="offset points", xytext=(8, 4), fontsize=9)
            ax.set_xticks(xs)
        else:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, lw=1.2)
        if name in baselines:
            key, value = baselines[name]
            ax.axhline(value, ls="--", lw=1, color="0.5", label=f"{key} {value:.4g}")
            ax.legend(fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=90)


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Lay out (below the figure title, if any), render to PNG in memory, close, write atomically."""
    import matplotlib.pyplot as plt

    if fig.get_suptitle():   # tight_layout ignores the figure title: keep the panels below it
        title_in = 0.3
        fig.tight_layout(rect=(0, 0, 1, 1 - title_in / fig.get_figheight()))
    else:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    write_bytes(path, buf.getvalue())
    return Path(path)
