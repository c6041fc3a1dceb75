"""Dense optical flow behind one protocol (docs/method.md §3: any dense flow/tracker works).

A flow back-end is a ``FlowFn``: two RGB frames in, the displacement of every pixel of the first frame
out. Built in: OpenCV DIS (weight-free default, presets) and Farneback. A learned tracker whose weights
the user has locally (RAFT, AllTracker, ...) plugs in with ``register_flow(name, fn)``; nothing is
ever downloaded.

Flow is estimated at a working resolution (long side ``work_size``; only ever a downscale) and every
displacement is reported in full-resolution pixels. Pair flows are combined into the two modes of
docs/method.md §3: ``consecutive`` (frame f → f+1) and ``anchor`` (first frame of the shot → f, what
AllTracker outputs), the latter by composing consecutive flows (see ``compose``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``fn(frame_a, frame_b)``: uint8 RGB ``[H, W, 3]`` twice → float32 ``[H, W, 2]``, the (u, v) = (x, y)
displacement in pixels that takes each pixel of ``frame_a`` to its position in ``frame_b``."""

# OpenCV's presets, plus two of ours (BENCHMARKS.md "Motion masks" measures all of them):
# - "balanced" (the default): MEDIUM on a sparser patch grid with fewer descent iterations; about as fast
#   as MEDIUM, as accurate on small motion and steadier on large motion (Sintel market_5, FlyingChairs);
# - "fine": the patch search runs down to the working resolution itself (finest scale 0; MEDIUM stops
#   at half resolution) without variational refinement: the lowest endpoint error at MEDIUM's cost,
#   but less smooth, so camera-compensation residuals keep more flow noise.
DIS_PRESETS: dict[str, tuple[int, dict[str, int]]] = {
    "ultrafast": (cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, {}),
    "fast": (cv2.DISOPTICAL_FLOW_PRESET_FAST, {}),
    "medium": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, {}),
    "balanced": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, {"PatchStride": 4, "GradientDescentIterations": 12}),
    "fine": (
        cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        {
            "FinestScale": 0,
            "PatchStride": 4,
            "GradientDescentIterations": 12,
            "VariationalRefinementIterations": 0,
        },
    ),
}

# cv2.calcOpticalFlowFarneback(pyr_scale, levels, winsize, iterations, poly_n, poly_sigma)
FARNEBACK_PRESETS: dict[str, tuple[float, int, int, int, int, float]] = {
    "fast": (0.5, 3, 11, 2, 5, 1.1),
    "balanced": (0.5, 5, 15, 3, 5, 1.2),
    "fine": (0.5, 5, 21, 5, 7, 1.5),
}


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame


def _preset(presets: dict, backend: str, preset: str):
    if preset not in presets:
        raise ValueError(f"unknown {backend} preset {preset!r}; choose from {sorted(presets)}")
    return presets[preset]


def dis_backend(preset: str = "balanced") -> FlowFn:
    """OpenCV DIS (Kroeger et al. 2016) as a ``FlowFn``; one DIS instance serves all calls."""
    base, overrides = _preset(DIS_PRESETS, "dis", preset)
    dis = cv2.DISOpticalFlow_create(base)
    for name, value in overrides.items():
        getattr(dis, f"set{name}")(value)

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return dis.calc(_gray(a), _gray(b), None)

    return flow


def farneback_backend(preset: str = "balanced") -> FlowFn:
    """OpenCV Farneback polynomial-expansion flow as a ``FlowFn``."""
    params = _preset(FARNEBACK_PRESETS, "farneback", preset)

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(_gray(a), _gray(b), None, *params, 0)

    return flow


# name → factory(preset) → FlowFn. Registered callables ignore the preset.
_BACKENDS: dict[str, Callable[[str], FlowFn]] = {"dis": dis_backend, "farneback": farneback_backend}


def register_flow(name: str, fn: FlowFn) -> None:
    """Make ``fn`` available as ``MaskConfig(flow=name)`` / ``motive motion --flow name``.

    ``fn(frame_a, frame_b)`` takes two uint8 RGB frames ``[H, W, 3]`` (already at the working
    resolution) and returns float32 ``[H, W, 2]`` (u, v) pixel displacements a → b, like Middlebury
    ``.flo``. Wrap a learned tracker by loading its weights from a local path once, outside ``fn``.
    """
    if name in ("dis", "farneback"):
        raise ValueError(f"{name!r} is a built-in flow back-end")
    _BACKENDS[name] = lambda _preset: fn


def flow_backends() -> list[str]:
    """Names usable as ``MaskConfig.flow``."""
    return sorted(_BACKENDS)


def get_flow(name: str, preset: str = "balanced") -> FlowFn:
    """The ``FlowFn`` of back-end ``name`` with ``preset`` (built-ins only)."""
    if name not in _BACKENDS:
        raise ValueError(
            f"unknown flow back-end {name!r}; known: {flow_backends()} (register others with register_flow)"
        )
    return _BACKENDS[name](preset)


def magnitude(flow: np.ndarray) -> np.ndarray:
    """Length of each displacement ``[..., 2]`` → ``[...]``."""
    return np.hypot(flow[..., 0], flow[..., 1])


def dis_flow(prev: np.ndarray, nxt: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Flow prev → next as ``[H, W, 2]`` float32 (u, v) = (x, y) displacement in pixels."""
    return dis_backend(preset)(prev, nxt)


def flow_magnitudes(frames: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Per-frame DIS motion magnitude ``[F, H, W]`` of a clip ``[F, H, W, 3]`` at full resolution.

    Frame f ≥ 1 gets ‖flow(f−1 → f)‖; frame 0 gets ‖flow(0 → 1)‖ (it has no predecessor). A one-frame
    clip has no motion (all zeros). ``motive.motion.compute_motion`` is the configurable version.
    """
    n, h, w = frames.shape[:3]
    if n < 2:
        return np.zeros((n, h, w), np.float32)
    fn = dis_backend(preset)
    mags = [magnitude(fn(frames[i], frames[i + 1])) for i in range(n - 1)]
    return np.stack([mags[0], *mags]).astype(np.float32)


# -- working resolution ------------------------------------------------------------------------------


def work_shape(height: int, width: int, work_size: int | None) -> tuple[int, int]:
    """(h, w) with long side ``work_size``, aspect kept; never larger than the input (None: as is)."""
    long_side = max(height, width)
    if work_size is None or work_size >= long_side:
        return height, width
    scale = work_size / long_side
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_frames(frames: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Frames ``[F, H, W, C]`` area-averaged to ``shape`` = (h, w) (a no-op at the same size)."""
    if frames.shape[1:3] == tuple(shape):
        return frames
    h, w = shape
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])


def to_pixels_of(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rescale displacements ``[..., h, w, 2]`` measured on an h×w grid into pixels of ``shape``
    = (H, W) (the grid itself is unchanged). Same grid: ``flow`` itself, else a new array."""
    h, w = flow.shape[-3:-1]
    if (h, w) == tuple(shape):
        return flow
    return flow * np.array([shape[1] / w, shape[0] / h], np.float32)


def upsample_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resample of a flow field ``[h, w, 2]`` already in full-resolution pixels onto the
    full-resolution grid ``shape`` = (H, W)."""
    if flow.shape[:2] == tuple(shape):
        return flow
    return cv2.resize(flow, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def compose(a_to_b: np.ndarray, b_to_c: np.ndarray) -> np.ndarray:
    """Flow a → c from a → b and b → c (both ``[h, w, 2]`` in pixels of this grid): follow each pixel
    to b, then add b's flow sampled (bilinearly) where it landed. Points that leave the frame take the
    nearest border flow."""
    h, w = a_to_b.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = xs + a_to_b[..., 0], ys + a_to_b[..., 1]
    moved = cv2.remap(b_to_c, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return a_to_b + moved


# -- Middlebury .flo files and endpoint error ---------------------------------------------------------

FLO_TAG = 202021.25
FLO_UNKNOWN = 1e9  # |u| or |v| above this: no ground truth at the pixel


def read_flo(path: str | Path) -> np.ndarray:
    """A Middlebury ``.flo`` file as float32 ``[H, W, 2]`` (u, v)."""
    data = Path(path).read_bytes()
    if np.frombuffer(data[:4], np.float32)[0] != FLO_TAG:
        raise ValueError(f"{path}: not a .flo file (bad tag)")
    w, h = np.frombuffer(data[4:12], np.int32)
    return np.frombuffer(data[12:], np.float32).reshape(h, w, 2).copy()


def write_flo(path: str | Path, flow: np.ndarray) -> Path:
    """Write ``[H, W, 2]`` (u, v) as a Middlebury ``.flo`` file."""
    path = Path(path)
    h, w = flow.shape[:2]
    header = np.array([FLO_TAG], np.float32).tobytes() + np.array([w, h], np.int32).tobytes()
    path.write_bytes(header + np.ascontiguousarray(flow, np.float32).tobytes())
    return path


def endpoint_error(flow: np.ndarray, truth: np.ndarray) -> float:
    """Mean endpoint error ‖flow − truth‖ over the pixels with known truth (``[H, W, 2]`` both)."""
    known = (np.abs(truth) < FLO_UNKNOWN).all(axis=-1)
    return float(magnitude(flow - truth)[known].mean())


def load_plugins(plugins: tuple[str, ...] | list[str]) -> None:
    """Import each module named in ``plugins``; a plug-in registers its flow back-end on import."""
    for name in plugins:
        importlib.import_module(name)
