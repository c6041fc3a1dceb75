"""Dense optical flow with OpenCV DIS (weight-free; METHOD.md §3 allows any dense tracker)."""

from __future__ import annotations

import cv2
import numpy as np

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame


def dis_flow(prev: np.ndarray, nxt: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Flow prev → next as ``[H, W, 2]`` float32 (u, v) = (x, y) displacement in pixels."""
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    return dis.calc(_gray(prev), _gray(nxt), None)


def flow_magnitudes(frames: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Per-frame motion magnitude ``[F, H, W]`` of a clip ``[F, H, W, 3]``.

    Frame f ≥ 1 gets ‖flow(f−1 → f)‖; frame 0 gets ‖flow(0 → 1)‖ (it has no predecessor). A one-frame
    clip has no motion (all zeros).
    """
    n, h, w = frames.shape[:3]
    if n < 2:
        return np.zeros((n, h, w), np.float32)
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    grays = [_gray(f) for f in frames]
    mags = [np.linalg.norm(dis.calc(grays[i], grays[i + 1], None), axis=-1) for i in range(n - 1)]
    return np.stack([mags[0], *mags]).astype(np.float32)
