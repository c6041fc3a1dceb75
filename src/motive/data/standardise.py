"""Bring a clip to a model's input format: fps, 4n+1 frames, height/width multiples of 16.

The paper standardises every clip to 81 frames at 16 fps, 480×832 for Wan2.1 (docs/method.md §4); it cut a
spurious score–length correlation by 54%. What was done to each clip is recorded so it can be
reported and checked (the feature store keeps the target, see ``StandardiseTarget``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from motive.data.video import Video


@dataclass(frozen=True)
class StandardiseTarget:
    """Target format. ``frames=None`` keeps the clip's own length, cut to the largest 4n+1."""

    fps: float = field(default=16.0, metadata={"help": "standardised frame rate"})
    frames: int | None = field(default=81, metadata={"help": "standardised frame count (4n+1)"})
    height: int = field(default=480, metadata={"help": "standardised height (multiple of 16)"})
    width: int = field(default=832, metadata={"help": "standardised width (multiple of 16)"})

    def __post_init__(self) -> None:
        if self.frames is not None and (self.frames < 1 or (self.frames - 1) % 4):
            raise ValueError(f"target frames must be 4n+1 (1, 5, 9, ..., 81), got {self.frames}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value < 16 or value % 16:
                raise ValueError(f"target {name} must be a positive multiple of 16, got {value}")
        if self.fps <= 0:
            raise ValueError(f"target fps must be positive, got {self.fps}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StandardiseRecord:
    """What standardisation did to one clip."""

    source_fps: float
    source_frames: int
    source_size: tuple[int, int]  # (H, W)
    frame_indices: list[int] = field(default_factory=list)  # source index of each output frame
    padded_frames: int = 0  # output frames that repeat the last source frame (clip too short)
    scale: float = 1.0  # resize factor applied before the centre crop
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)  # (top, left, height, width) in resized pixels

    def to_dict(self) -> dict:
        return asdict(self)


def largest_4n1(n: int) -> int:
    """Largest 4k+1 not above ``n`` (n ≥ 1)."""
    if n < 1:
        raise ValueError("need at least one frame")
    return (n - 1) // 4 * 4 + 1


def resample_indices(
    source_frames: int, source_fps: float, target_fps: float, frames: int | None
) -> tuple[list[int], int]:
    """Source frame index for each output frame (the frame shown at time i / target_fps), and how
    many output frames fall past the clip's end and so repeat its last frame.

    With ``frames=None`` the output covers the whole clip, cut to the largest 4n+1.
    """
    duration = source_frames / source_fps
    available = max(1, int(np.floor(duration * target_fps + 1e-6)))
    count = largest_4n1(available) if frames is None else frames
    times = np.arange(count) / target_fps
    idx = np.floor(times * source_fps + 1e-6).astype(int)
    padded = int((idx >= source_frames).sum())
    return np.minimum(idx, source_frames - 1).tolist(), padded


def resize_crop(
    frames: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, float, tuple[int, int, int, int]]:
    """Resize so the clip covers ``height``×``width`` (aspect kept), then centre crop. frames [F,H,W,3]."""
    h, w = frames.shape[1:3]
    scale = max(height / h, width / w)
    rh, rw = max(height, round(h * scale)), max(width, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    top, left = (rh - height) // 2, (rw - width) // 2
    if (rh, rw) == (h, w):
        out = frames[:, top : top + height, left : left + width]
    else:
        out = np.stack(
            [
                cv2.resize(f, (rw, rh), interpolation=interp)[top : top + height, left : left + width]
                for f in frames
            ]
        )
    return np.ascontiguousarray(out), float(scale), (top, left, height, width)


def standardise(video: Video, target: StandardiseTarget) -> tuple[Video, StandardiseRecord]:
    """Resample ``video`` in time and space to ``target``; returns the new clip and what was done."""
    idx, padded = resample_indices(video.num_frames, video.fps, target.fps, target.frames)
    frames, scale, crop = resize_crop(video.frames[idx], target.height, target.width)
    record = StandardiseRecord(
        source_fps=video.fps,
        source_frames=video.num_frames,
        source_size=(video.height, video.width),
        frame_indices=idx,
        padded_frames=padded,
        scale=scale,
        crop=crop,
    )
    return Video(frames, target.fps, video.source), record
