"""The motion mask (docs/method.md §3): flow magnitude → clip-wide min–max → latent grid.

W = (M − min M) / (max M − min M + ζ), min/max over the whole clip; then bilinear to the latent grid
(spatial ÷8) and causal temporal grouping onto the VAE's latent frames: latent frame 0 ← pixel frame
0, latent frame k ≥ 1 ← mean of pixel frames 4k−3 … 4k.

``compute_motion`` is the whole stage on real video: flow at a working resolution (any back-end, two
modes), hard cuts kept out of the mask, optional camera-motion compensation, and the per-clip
statistics written to ``stats.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from motive.motion.camera import CAMERA_MODELS, CameraFit, fit_camera, residual_flow
from motive.motion.cuts import detect_cuts, shot_starts
from motive.motion.flow import (
    FlowFn,
    compose,
    get_flow,
    magnitude,
    resize_frames,
    to_pixels_of,
    upsample_flow,
    work_shape,
)

ZETA = 1e-6
MODES = ("consecutive", "anchor")


@dataclass(frozen=True)
class MaskConfig:
    """How masks are made; recorded with every feature store (every field is JSON-plain).

    The defaults reproduce the paper's mask (no camera compensation) with weight-free DIS flow at a
    256-pixel working resolution; cut detection only changes clips that contain hard cuts.
    """

    flow: str = field(  # a learned tracker plugs in through register_flow
        default="dis", metadata={"help": "flow back-end: dis, farneback or a registered name"}
    )
    preset: str = field(  # dis: ultrafast/fast/medium/balanced/fine; farneback: fast/balanced/fine
        default="balanced", metadata={"help": "back-end preset (dis: ultrafast/fast/medium/balanced/fine)"}
    )
    zeta: float = ZETA
    spatial_stride: int | None = (
        None  # None: the model's VAE compression (8 for Wan2.1, 4 for the tiny model)
    )
    temporal_stride: int | None = None  # None: the model's (4 for both)
    work_size: int | None = field(  # never upscales
        default=256, metadata={"help": "long side flow is estimated at; 0 = full resolution"}
    )
    mode: str = field(
        default="consecutive",
        metadata={
            "help": "flow f-1 -> f, or from the first frame of the shot (AllTracker-style)",
            "choices": MODES,
        },
    )
    camera_compensation: bool = field(
        default=False,
        metadata={"help": "subtract the fitted camera motion before taking magnitudes (off = the paper)"},
    )
    camera_model: str = field(
        default="homography", metadata={"help": "camera motion model", "choices": CAMERA_MODELS}
    )
    camera_threshold: float = 1.0  # RANSAC inlier distance in working-resolution pixels
    camera_only_ratio: float = 0.25  # camera_only: residual / raw mean flow at most this ...
    camera_only_spread: float = 0.3  # ... and the residual's uniformity at least this (no mover left)
    cut_detection: bool = field(default=True, metadata={"help": "read flow across hard cuts as motion"})
    cut_threshold: float = field(default=1.0, metadata={"help": "lower finds more (softer) cuts"})

    def __post_init__(self) -> None:
        if self.work_size == 0:  # 0 is how the command line says "full resolution"
            object.__setattr__(self, "work_size", None)
        if self.mode not in MODES:
            raise ValueError(f"unknown flow mode {self.mode!r}; choose from {MODES}")
        if self.camera_model not in CAMERA_MODELS:
            raise ValueError(f"unknown camera model {self.camera_model!r}; choose from {CAMERA_MODELS}")
        if self.work_size is not None and self.work_size < 16:
            raise ValueError(f"work_size must be at least 16 pixels (or None), got {self.work_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    def for_model(self, spatial: int, temporal: int) -> MaskConfig:
        """These settings with unset strides filled from a model's VAE; set ones must agree."""
        s = self.spatial_stride or spatial
        t = self.temporal_stride or temporal
        if (s, t) != (spatial, temporal):
            raise ValueError(
                f"mask strides ({s}, {t}) do not match the model's latent grid ({spatial}, {temporal})"
            )
        return replace(self, spatial_stride=s, temporal_stride=t)


@dataclass
class MotionResult:
    """What the motion stage found in one clip."""

    weights: np.ndarray  # [F, H, W] float32 pixel-grid W in [0, 1): what latent_mask takes
    mean_flow: float  # raw mean flow magnitude, full-resolution pixels per frame pair
    stats: (
        dict  # JSON-plain per-clip statistics (stats.json; keys in docs/formats.md "`motive motion` outputs")
    )
    flow: np.ndarray  # [P, h, w, 2] float32 pair flows at the working resolution, in full-resolution
    #                   pixels (u, v); pair i is frame i → i+1 (anchor: shot start → i+1); NaN across cuts
    raw_weights: np.ndarray  # [F, h, w] W without camera compensation, at the working resolution

    def full_flow(self, pair: int) -> np.ndarray:
        """Flow of one pair on the full-resolution grid ``[H, W, 2]``."""
        return upsample_flow(self.flow[pair], self.weights.shape[1:])


def _minmax_(x: np.ndarray, lo: float, hi: float, zeta: float) -> np.ndarray:
    """(x − lo) / (hi − lo + ζ) in place on a float32 array (full-resolution clips are large)."""
    x -= lo
    x /= hi - lo + zeta
    return x


def normalise_clip(mags: np.ndarray, zeta: float = ZETA) -> np.ndarray:
    """Min–max normalise magnitudes ``[F, H, W]`` over the whole clip into [0, 1)."""
    return _minmax_(mags.astype(np.float32), float(mags.min()), float(mags.max()), zeta)


def uniformity(weights: np.ndarray) -> float:
    """Spatial uniformity of a mask ``[F, H, W]``: per frame the participation ratio
    (mean W)² / mean(W²), i.e. the effective share of the frame that carries the weight (1: uniform,
    as under a pan; 0.05: concentrated on 5% of the frame), averaged over frames with any weight."""
    mean = weights.mean(axis=(1, 2), dtype=np.float64)  # [F]
    mean_sq = np.square(weights, dtype=np.float64).mean(axis=(1, 2))  # [F]
    some = mean_sq > 0
    return float((mean[some] ** 2 / mean_sq[some]).mean()) if some.any() else 0.0


def _pair_flows(frames: np.ndarray, fn: FlowFn, cuts: list[int], mode: str) -> np.ndarray:
    """Flows ``[F−1, h, w, 2]`` in pixels of ``frames`` ``[F, h, w, 3]``: pair i ends at frame i+1 and
    starts at frame i (consecutive) or at the first frame of i+1's shot (anchor, by composing the
    consecutive flows). Pairs ending on the first frame of a new shot are NaN and never estimated."""
    n, h, w = frames.shape[:3]
    out = np.full((max(n - 1, 0), h, w, 2), np.nan, np.float32)
    starts = shot_starts(n, cuts)
    for i in range(n - 1):
        if starts[i + 1] != starts[i]:  # i+1 begins a new shot
            continue
        step = fn(frames[i], frames[i + 1])
        if np.shape(step) != (h, w, 2):
            raise ValueError(
                f"flow back-end returned shape {np.shape(step)} for {h}x{w} frames; expected ({h}, {w}, 2)"
            )
        out[i] = step if mode == "consecutive" or starts[i] == i else compose(out[i - 1], step)
    return out


NO_PAIR = -1  # a frame without flow of its own (a one-frame shot in consecutive mode)
STILL = -2  # anchor mode: the first frame of a shot, displacement 0 by definition


def _frame_pairs(valid: np.ndarray, mode: str) -> np.ndarray:
    """Which pair gives each frame its magnitude ``[F]`` (pair index, ``NO_PAIR`` or ``STILL``).
    Consecutive: frame f takes pair f−1 → f, or its forward pair f → f+1 when it has no predecessor
    in its shot (frame 0, the first frame after a cut). Anchor: pair f−1 = shot start → f."""
    n = len(valid) + 1
    index = np.full(n, NO_PAIR, np.int64)
    for f in range(n):
        if mode == "anchor":
            index[f] = f - 1 if f >= 1 and valid[f - 1] else STILL
        elif f >= 1 and valid[f - 1]:
            index[f] = f - 1
        elif f < n - 1 and valid[f]:
            index[f] = f
    return index


def _weights(pair_mags: np.ndarray, index: np.ndarray, zeta: float) -> np.ndarray:
    """Pixel-grid W ``[F, h, w]``: each frame's magnitudes (``_frame_pairs``), min–max over the frames
    that have one; ``NO_PAIR`` frames stay 0 and take no part in the min and max."""
    out = np.zeros((len(index), *pair_mags.shape[1:]), np.float32)
    take = index >= 0
    out[take] = pair_mags[index[take]]
    has = index != NO_PAIR
    if not has.any():
        return out
    known = out if has.all() else out[has]
    _minmax_(out, float(known.min()), float(known.max()), zeta)
    out[~has] = 0.0
    return out


def _upsample(weights: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear ``[F, h, w]`` → ``[F, H, W]``, frame by frame into one array (long clips stay lean)."""
    if weights.shape[1:] == tuple(shape):
        return weights
    out = np.empty((len(weights), *shape), np.float32)
    for f, w in enumerate(weights):
        out[f] = cv2.resize(w, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return out


def _mean(values: np.ndarray) -> float:
    return round(float(values.mean()), 4) if len(values) else 0.0


def compute_motion(frames: np.ndarray, config: MaskConfig | None = None) -> MotionResult:
    """Flow, cuts, camera and the pixel-grid mask W of a clip ``[F, H, W, 3]`` uint8 RGB.

    With the default config (no compensation) a clip without cuts gets the paper's W: min–max of
    ‖flow‖ over the clip, frame 0 taking the 0 → 1 flow. Camera fits always run (they are cheap), so
    ``stats`` reports the camera and flags camera-only clips either way; compensation decides
    whether the mask is made from the residual.
    """
    c = config or MaskConfig()
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB frames [F, H, W, 3], got {frames.dtype} {frames.shape}")
    n, height, width = frames.shape[:3]
    full = (height, width)
    small = resize_frames(frames, work_shape(height, width, c.work_size))  # [F, h, w, 3]
    cuts = detect_cuts(small, c.cut_threshold) if c.cut_detection else []
    flow = to_pixels_of(_pair_flows(small, get_flow(c.flow, c.preset), cuts, c.mode), full)  # [P, h, w, 2]
    valid = np.isfinite(flow).all(axis=(1, 2, 3))  # [P] pairs inside one shot
    fits: list[CameraFit | None] = [
        fit_camera(f, full, c.camera_model, c.camera_threshold) if ok else None for f, ok in zip(flow, valid)
    ]
    raw = magnitude(flow)  # [P, h, w], NaN across cuts
    residual = raw.copy()  # [P, h, w]
    for i, fit in enumerate(fits):
        if fit is not None and not fit.static:
            residual[i] = magnitude(residual_flow(flow[i], fit, full))

    index = _frame_pairs(valid, c.mode)  # [F]
    raw_w = _weights(raw, index, c.zeta)  # [F, h, w]
    res_w = _weights(residual, index, c.zeta)  # [F, h, w]
    used = res_w if c.camera_compensation else raw_w

    raw_pair = raw[valid].mean(axis=(1, 2)) if valid.any() else np.zeros(0)  # [valid P]
    res_pair = residual[valid].mean(axis=(1, 2)) if valid.any() else np.zeros(0)
    mean_flow = float(raw_pair.mean()) if len(raw_pair) else 0.0
    raw_mean, res_mean = _mean(raw_pair), _mean(res_pair)
    ratio = round(res_mean / raw_mean, 4) if raw_mean > 0 else 1.0
    moving_camera = any(fit is not None and not fit.static for fit in fits)
    res_uniformity = round(uniformity(res_w), 4)
    # explained by the camera: little flow left after subtracting it, and what is left is spread
    # over the frame (flow noise) rather than concentrated on a mover
    camera_only = moving_camera and ratio <= c.camera_only_ratio and res_uniformity >= c.camera_only_spread
    stats = {
        "frames": n,
        "pairs": len(flow),
        "height": height,
        "width": width,
        "work_height": small.shape[1],
        "work_width": small.shape[2],
        "mode": c.mode,
        "raw_mean_flow": raw_mean,
        "residual_mean_flow": res_mean if c.camera_compensation else raw_mean,
        "camera_residual_ratio": ratio,
        "camera_only": bool(camera_only),
        "uniformity": round(uniformity(used), 4),
        "raw_uniformity": round(uniformity(raw_w), 4),
        "residual_uniformity": res_uniformity,
        "cuts": cuts,
        "excluded_pairs": [int(i) for i in np.flatnonzero(~valid)],
        "pair_raw_flow": [round(float(v), 4) for v in raw_pair],
        "pair_residual_flow": [round(float(v), 4) for v in res_pair],
        "camera": [fit.to_dict(height, width) if fit else None for fit in fits],
        "settings": c.to_dict(),
    }
    return MotionResult(_upsample(used, full), mean_flow, stats, flow, raw_w)


def temporal_group(w: torch.Tensor, stride: int = 4) -> torch.Tensor:
    """Causal grouping ``[F, h, w]`` → ``[(F−1)/stride + 1, h, w]``: frame 0 alone, then means of
    consecutive groups of ``stride`` frames (Wan's causal VAE latent frames)."""
    n = w.shape[0]
    if (n - 1) % stride:
        raise ValueError(f"frame count must be {stride}n+1, got {n}")
    rest = w[1:].reshape((n - 1) // stride, stride, *w.shape[1:]).mean(dim=1)
    return torch.cat([w[:1], rest], dim=0)


def latent_mask(
    weights: np.ndarray, spatial_stride: int = 8, temporal_stride: int = 4, pad: bool = False
) -> torch.Tensor:
    """Pixel-grid weights ``[F, H, W]`` → latent-grid W̃ ``[f, H/s, W/s]`` (bilinear, then grouping).

    ``pad=True`` accepts clips not standardised to the model's format: bottom/right edges are
    replicated up to stride multiples and the last frame repeated up to a ``temporal_stride``·n+1
    count. Frames are resampled in chunks, so a long clip is never copied whole.
    """
    n, h, w = weights.shape
    s = spatial_stride
    pad_h, pad_w = ((-h) % s, (-w) % s) if pad else (0, 0)
    if (h + pad_h) % s or (w + pad_w) % s:
        raise ValueError(f"frame size {h}x{w} is not divisible by the latent stride {s}")
    size = ((h + pad_h) // s, (w + pad_w) // s)
    cells = []
    for start in range(0, n, 64):
        x = torch.from_numpy(np.ascontiguousarray(weights[start : start + 64])).float()[
            :, None
        ]  # [C, 1, H, W]
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        cells.append(F.interpolate(x, size=size, mode="bilinear", align_corners=False)[:, 0])
    grid = torch.cat(cells)  # [F, h, w]
    if pad and (n - 1) % temporal_stride:
        grid = torch.cat([grid, grid[-1:].expand((-(n - 1)) % temporal_stride, *size)])
    return temporal_group(grid, temporal_stride)


def motion_mask(frames: np.ndarray, config: MaskConfig | None = None) -> torch.Tensor:
    """The motion mask W̃ ``[f, h, w]`` of a standardised clip ``[F, H, W, 3]``."""
    c = config or MaskConfig(spatial_stride=8, temporal_stride=4)
    weights = compute_motion(frames, c).weights
    return latent_mask(weights, c.spatial_stride, c.temporal_stride)
