"""Tiny dependency-free plots (OpenCV drawing) for run folders: loss curves and bar charts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

_COLOURS = [(200, 90, 30), (40, 140, 230), (60, 170, 60), (40, 40, 200), (150, 60, 150)]  # BGR


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
    width, height, margin = 720, 420, 60
    img = np.full((height, width, 3), 255, np.uint8)
    ys = [np.asarray(v, dtype=np.float64) for v in series.values() if len(v)]
    if not ys:
        raise ValueError("nothing to plot")
    allv = np.concatenate(ys)
    if log_y:
        allv = np.log10(np.maximum(allv, 1e-12))
    lo, hi = float(np.min(allv)), float(np.max(allv))
    hi = hi if hi > lo else lo + 1.0
    n = max(len(v) for v in ys)
    cv2.rectangle(img, (margin, margin // 2), (width - 20, height - margin), (0, 0, 0), 1)
    for k, (name, values) in enumerate(series.items()):
        v = np.asarray(values, dtype=np.float64)
        if log_y:
            v = np.log10(np.maximum(v, 1e-12))
        px = margin + (np.arange(len(v)) / max(1, n - 1)) * (width - 20 - margin)
        py = (height - margin) - (v - lo) / (hi - lo) * (height - margin - margin // 2)
        pts = np.stack([px, py], axis=1).astype(np.int32).reshape(-1, 1, 2)
        colour = _COLOURS[k % len(_COLOURS)]
        cv2.polylines(img, [pts], False, colour, 1, cv2.LINE_AA)
        cv2.putText(
            img,
            name,
            (margin + 10, margin // 2 + 20 + 18 * k),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            colour,
            1,
            cv2.LINE_AA,
        )
    fmt = (lambda x: f"1e{x:.1f}") if log_y else (lambda x: f"{x:.3g}")
    cv2.putText(img, fmt(hi), (4, margin // 2 + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, fmt(lo), (4, height - margin), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        img,
        f"{xlabel} (0..{n})",
        (width // 2 - 40, height - 20),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    cv2.putText(img, title, (margin, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    path = Path(path)
    cv2.imwrite(str(path), img)
    return path
