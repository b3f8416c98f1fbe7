"""Sample pictures for the toy recipes, written atomically as PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.plots import save_figure


def _figure(w: float = 5.0, h: float = 3.6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(w, h))


def _save(plt, fig, path: Path) -> Path:
    return save_figure(fig, path)


def scatter_vs_curve(points: np.ndarray, reference: np.ndarray, path: Path, title: str = "",
                     label: str = "generated") -> Path:
    """(x, y) points (generated, or training data with label=...) over the true curve (or held-out points)."""
    plt, fig, ax = _figure()
    order = np.argsort(reference[:, 0])
    ax.plot(reference[order, 0], reference[order, 1], color="0.3", lw=1.5, label="real")
    ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.5, color="tab:red", label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def histogram_numbers(numbers: np.ndarray, valid: np.ndarray, width: int, path: Path,
                      what: str = "generated") -> Path:
    """Counts of each integer (generated, or training data with what=...); valid values in green, invalid in red."""
    plt, fig, ax = _figure(7, 3.2)
    counts = np.bincount(numbers, minlength=width)
    colors = np.where(np.isin(np.arange(width), valid), "tab:green", "tab:red")
    ax.bar(np.arange(width), counts, color=colors, width=0.9)
    ax.set_xlabel(f"{what} number")
    ax.set_ylabel("count")
    ax.set_title(f"{len(numbers)} samples: {np.isin(numbers, valid).mean():.1%} valid, "
                 f"{len(np.intersect1d(numbers, valid))}/{len(valid)} valid values seen", fontsize=9)
    return _save(plt, fig, path)
