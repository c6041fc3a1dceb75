"""Camera-motion compensation: fit one global motion per frame pair to the flow, robustly, and subtract it.

The paper's masks over-weight camera-only motion (docs/method.md §3, §9). A pan, tilt, zoom or roll moves
the whole image by one projective map, so a homography (or affine map) fitted with RANSAC to samples of
the flow explains the background; what the fit cannot explain (the residual) is the objects' own
motion. Depth parallax (a forward dolly past near and far things) is not one homography: part of it
stays in the residual (BENCHMARKS.md reports how much).

A static camera must keep its object motion, so the fit competes with "no camera motion": when zero
displacement explains at least as many samples as the fitted model, the pair is declared static and
nothing is subtracted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

CAMERA_MODELS = ("homography", "affine")


@dataclass
class CameraFit:
    """The global motion of one frame pair, in full-resolution pixel coordinates (x right, y down)."""

    matrix: np.ndarray  # [3, 3] maps a point of the first frame to its position in the second
    inliers: float  # share of flow samples within the threshold of the model
    static: bool  # zero motion explains the samples as well as the model: nothing is subtracted

    def centre_motion(self, height: int, width: int) -> dict[str, float]:
        """Shift of the image centre (tx, ty, pixels), scale (> 1 zooms in) and rotation (degrees,
        clockwise on screen) of the map, linearised at the centre."""
        cx, cy = (width - 1) / 2, (height - 1) / 2
        m = self.matrix
        p = m @ np.array([cx, cy, 1.0])
        x, y = p[0] / p[2], p[1] / p[2]
        # Jacobian of the projective map at the centre
        jac = (m[:2, :2] - np.outer([x, y], m[2, :2])) / p[2]
        scale = math.sqrt(abs(float(np.linalg.det(jac))))
        rotation = math.degrees(math.atan2(jac[1, 0] - jac[0, 1], jac[0, 0] + jac[1, 1]))
        return {"tx": float(x - cx), "ty": float(y - cy), "scale": scale, "rotation_deg": rotation}

    def to_dict(self, height: int, width: int) -> dict:
        """JSON-plain record for stats.json."""
        return {
            "static": self.static,
            "inliers": round(self.inliers, 4),
            **{k: round(v, 4) for k, v in self.centre_motion(height, width).items()},
            "matrix": [[round(float(v), 7) for v in row] for row in self.matrix],
        }


IDENTITY = np.eye(3)


def grid_coords(shape: tuple[int, int], full: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution coordinates (x, y) ``[h, w]`` of the pixel centres of an h×w grid laid over an
    H×W frame (``full``)."""
    h, w = shape
    xs = (np.arange(w, dtype=np.float32) + 0.5) * (full[1] / w) - 0.5
    ys = (np.arange(h, dtype=np.float32) + 0.5) * (full[0] / h) - 0.5
    return np.meshgrid(xs, ys)


def camera_flow(matrix: np.ndarray, shape: tuple[int, int], full: tuple[int, int]) -> np.ndarray:
    """Displacement ``[h, w, 2]`` (full-resolution pixels) the map ``matrix`` gives each pixel of an
    h×w grid laid over the H×W frame."""
    x, y = grid_coords(shape, full)
    pts = np.stack([x, y, np.ones_like(x)], axis=-1) @ matrix.T.astype(np.float32)  # [h, w, 3]
    return pts[..., :2] / pts[..., 2:] - np.stack([x, y], axis=-1)


def fit_camera(
    flow: np.ndarray,
    full: tuple[int, int],
    model: str = "homography",
    threshold: float = 1.0,
    samples: int = 1500,
    border: float = 0.05,
    min_gain: float = 0.1,
) -> CameraFit:
    """Fit the global motion to a flow field ``[h, w, 2]`` (displacements in full-resolution pixels,
    on an h×w grid over the H×W frame ``full``) with RANSAC.

    ``threshold``: inlier distance in pixels of the flow's grid (it is scaled to full resolution).
    ``samples``: about this many grid points are used, skipping a ``border`` share at each edge where
    content enters or leaves the frame.
    """
    if model not in CAMERA_MODELS:
        raise ValueError(f"unknown camera model {model!r}; choose from {CAMERA_MODELS}")
    h, w = flow.shape[:2]
    step = max(1, int(math.sqrt(h * w / samples)))
    y0, x0 = int(h * border), int(w * border)
    x, y = grid_coords((h, w), full)
    sl = (slice(y0, h - y0 or None, step), slice(x0, w - x0 or None, step))
    src = np.stack([x[sl], y[sl]], axis=-1).reshape(-1, 2)  # [N, 2]
    obs = flow[sl].reshape(-1, 2)  # [N, 2]
    keep = np.isfinite(obs).all(axis=1)
    src, obs = src[keep], obs[keep]
    t = threshold * max(full[0] / h, full[1] / w)
    if len(src) < 8:
        return CameraFit(IDENTITY.copy(), 0.0, True)
    dst = src + obs
    if model == "homography":
        matrix, _ = cv2.findHomography(src, dst, cv2.RANSAC, t, maxIters=2000, confidence=0.995)
    else:
        affine, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=t)
        matrix = None if affine is None else np.vstack([affine, [0.0, 0.0, 1.0]])
    if matrix is None:
        return CameraFit(IDENTITY.copy(), 0.0, True)
    pts = np.hstack([src, np.ones((len(src), 1), np.float32)]) @ matrix.T
    pred = pts[:, :2] / pts[:, 2:] - src
    inliers = int((np.linalg.norm(pred - obs, axis=1) < t).sum())
    still = int((np.linalg.norm(obs, axis=1) < t).sum())
    if inliers - still <= min_gain * len(src):
        return CameraFit(IDENTITY.copy(), still / len(src), True)
    return CameraFit(matrix, inliers / len(src), False)


def residual_flow(flow: np.ndarray, fit: CameraFit, full: tuple[int, int]) -> np.ndarray:
    """The flow ``[h, w, 2]`` minus the camera's displacement (the flow itself for a static pair)."""
    if fit.static:
        return flow
    return flow - camera_flow(fit.matrix, flow.shape[:2], full)
