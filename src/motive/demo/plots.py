"""Plots of a run folder with matplotlib: loss curves (and the smoothing they are drawn with)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def smooth(values: list[float], window: int) -> np.ndarray:
    """Trailing moving average (same length as ``values``)."""
    v = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def line_plot(
    path: str | Path, series: dict[str, list[float]], title: str, xlabel: str = "step", log_y: bool = False
) -> Path:
    """Write a PNG line plot of one or more series (x = index)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(len(v) for v in series.values()):
        raise ValueError("nothing to plot")
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for name, values in series.items():
        ax.plot(np.arange(len(values)), values, label=name, linewidth=1)
    if log_y:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
