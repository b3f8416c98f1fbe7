"""PNG plots of metrics.jsonl: one panel per logged quantity, train and eval lines."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .io import write_bytes


def plot_metrics(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Plot every numeric key against `step`; returns the path, or None with nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        step, kind = row.get("step"), row.get("kind", "train")
        for key, value in row.items():
            if key in ("step", "kind", "time", "lr_scale") or not isinstance(value, (int, float)):
                continue
            xs, ys = series.setdefault(f"{kind}/{key}", ([], []))
            xs.append(step)
            ys.append(value)
    if not series:
        return None
    names = sorted(series, key=lambda k: (not k.startswith("train/"), k))
    cols = min(3, len(names))
    rows_n = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.0 * rows_n), squeeze=False)
    for ax, name in zip(axes.flat, names):
        xs, ys = series[name]
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, lw=1.2)
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
    """Lay out, render to PNG in memory, close, and write atomically."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    write_bytes(path, buf.getvalue())
    return Path(path)
