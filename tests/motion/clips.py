"""Synthetic clips with known motion for the motion tests (textures DIS can track)."""

from __future__ import annotations

import cv2
import numpy as np


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture ``[H, W, 3]`` uint8 (blurred noise: trackable at every scale)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255
    return smooth.astype(np.uint8)


def warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``image`` seen after the 3×3 map ``matrix`` moved its content (reflected at the borders)."""
    h, w = image.shape[:2]
    return cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def camera_clip(frames: int, matrix: np.ndarray, size: int = 96, seed: int = 0) -> np.ndarray:
    """A textured scene moved by ``matrix`` between consecutive frames ``[F, size, size, 3]``."""
    big = texture(size * 2, size * 2, seed)
    s0 = size // 2
    to_big = translation(s0, s0)  # crop coordinates → big-image coordinates
    out, m = [], np.eye(3)
    for _ in range(frames):
        moved = warp(big, to_big @ m @ np.linalg.inv(to_big))
        out.append(moved[s0 : s0 + size, s0 : s0 + size])
        m = matrix @ m
    return np.stack(out)


def object_clip(frames: int, size: int = 96, step: int = 2, pan: float = 0.0, seed: int = 0) -> np.ndarray:
    """A textured square moving right by ``step`` px per frame over a textured background that
    itself pans right by ``pan`` px per frame. ``[F, size, size, 3]``."""
    background = texture(size, size * 3, seed)
    patch = texture(size // 4, size // 4, seed + 1)
    p = size // 4
    out = []
    for f in range(frames):
        x0 = int(round(size - pan * f))
        frame = background[:, x0 : x0 + size].copy()
        left = size // 8 + step * f
        frame[size // 3 : size // 3 + p, left : left + p] = patch
        out.append(frame)
    return np.stack(out)


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def thumbnails(path, width: int = 160, max_frames: int | None = None) -> np.ndarray:
    """A video decoded straight to small RGB frames ``[F, h, width, 3]`` (cheap for long HD clips)."""
    import av

    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        height = round(stream.height * width / stream.width / 2) * 2
        for frame in container.decode(stream):
            out.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
            if max_frames is not None and len(out) >= max_frames:
                break
    return np.stack(out)
