"""Bring a clip to a model's input format: fps, 4n+1 frames, height/width multiples of 16.

The paper standardises every clip to 81 frames at 16 fps, 480×832 for Wan2.1 (docs/method.md §4); it cut a
spurious score–length correlation by 54%. What was done to each clip is recorded so it can be
reported and checked (the feature store keeps the target, see ``StandardiseTarget``).
``read_standardised`` does the same while decoding, so a long clip is never held whole at full size.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from av.video.reformatter import Interpolation

from motive.data.video import DEFAULT_FRAMES_FPS, ClipReader, Decoded, Video, VideoError


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
    # how source_frames is known: "decoded" (counted to the clip's end: exact); when streaming stopped
    # after the last frame it needed, "stated" (the container's or folder's own count) or, if it states
    # none, "at_least" (the frames decoded: a lower bound)
    source_frames_from: str = "decoded"

    def to_dict(self) -> dict:
        return asdict(self)


def largest_4n1(n: int) -> int:
    """Largest 4k+1 not above ``n`` (n ≥ 1)."""
    if n < 1:
        raise ValueError("need at least one frame")
    return (n - 1) // 4 * 4 + 1


def source_indices(start: int, stop: int, source_fps: float, target_fps: float) -> np.ndarray:
    """Source frame shown at output time i / target_fps for i in [start, stop), past the clip's end too.

    Frame-counter based (the average rate, not timestamps), like every index here. [stop - start]
    """
    times = np.arange(start, stop) / target_fps
    return np.floor(times * source_fps + 1e-6).astype(int)


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
    idx = source_indices(0, count, source_fps, target_fps)
    padded = int((idx >= source_frames).sum())
    return np.minimum(idx, source_frames - 1).tolist(), padded


def _cover(h: int, w: int, height: int, width: int) -> tuple[float, int, int, int, int]:
    """(scale, resized height, resized width, crop top, crop left) to cover ``height``×``width`` from
    an ``h``×``w`` frame with its aspect kept, then centre crop."""
    scale = max(height / h, width / w)
    rh, rw = max(height, round(h * scale)), max(width, round(w * scale))
    return float(scale), rh, rw, (rh - height) // 2, (rw - width) // 2


def _cv2_resize(frame: np.ndarray, rh: int, rw: int, scale: float) -> np.ndarray:
    """``frame`` [H, W, 3] resized to [rh, rw, 3]: area averaging to shrink, bilinear to enlarge."""
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(frame, (rw, rh), interpolation=interp)


def resize_crop(
    frames: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, float, tuple[int, int, int, int]]:
    """Resize so the clip covers ``height``×``width`` (aspect kept), then centre crop. frames [F,H,W,3]."""
    h, w = frames.shape[1:3]
    scale, rh, rw, top, left = _cover(h, w, height, width)
    if (rh, rw) == (h, w):
        out = frames[:, top : top + height, left : left + width]
    else:
        out = np.stack(
            [_cv2_resize(f, rh, rw, scale)[top : top + height, left : left + width] for f in frames]
        )
    return np.ascontiguousarray(out), scale, (top, left, height, width)


def warn_padded(source: str, record: StandardiseRecord) -> None:
    """Say so when a clip was too short for the target and its last frame fills the rest (a 2-s GIF
    brought to 81 frames at 16 fps ends in 49 frozen frames, which teach the model stillness)."""
    if record.padded_frames:
        total = len(record.frame_indices)
        warnings.warn(
            f"{source}: shorter than the clip format ({record.source_frames} frames at "
            f"{record.source_fps:g} fps); its last frame fills {record.padded_frames} of {total} frames",
            stacklevel=3,
        )


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
    warn_padded(str(video.source), record)
    return Video(frames, target.fps, video.source), record


def _wanted(source_fps: float, target_fps: float, frames: int | None) -> Iterator[int]:
    """The source indices ``resample_indices`` can pick, in order and unclipped: the first ``frames``,
    or endlessly with ``frames=None`` (the count is known only at the clip's end)."""
    start, step = 0, frames or 256
    while frames is None or start < frames:
        yield from source_indices(start, start + step, source_fps, target_fps).tolist()
        start += step


# FFmpeg (swscale) scalers for resizing a video frame during its RGB conversion, chosen to match cv2's
# INTER_AREA / INTER_LINEAR on the decoded RGB frame (``resize_crop``); the FULL_CHR flags take chroma at
# full resolution, as the unscaled conversion does before cv2. Mean abs difference from the cv2 path,
# measured on the real clips of tests/data/test_stream.py (h264, VP8, GIF; shrink and enlarge): at most
# 1.6 levels a clip; RESIZE_TOLERANCE is the bound the tests hold it to.
_FULL_CHROMA = Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP
SHRINK = Interpolation.AREA | _FULL_CHROMA
ENLARGE = Interpolation.BILINEAR | _FULL_CHROMA
RESIZE_TOLERANCE = 2.0


def standardise_stream(reader: ClipReader, target: StandardiseTarget) -> tuple[Video, StandardiseRecord]:
    """``standardise(read_video(...), target)`` while decoding: stops after the last source frame needed,
    converts (and resizes) only the frames it keeps, and holds only those, at the target size.

    Indices and padding equal ``standardise``'s (same frame-counter rule; a clip that ends before the
    last frame needed is counted to its end and padded as before). Pixels are equal when no resize is
    needed; otherwise a video frame is resized inside FFmpeg's colour conversion (``SHRINK``/``ENLARGE``):
    mean abs difference from the cv2 path measured ≤ 1.6 levels on real h264/VP8/GIF clips, held to
    ``RESIZE_TOLERANCE`` (2.0) by the tests. Folder images are resized with cv2, exactly as before.
    When decoding stops early the clip's length is the container's stated count, or a lower bound:
    see ``StandardiseRecord.source_frames_from``.
    """
    wanted = _wanted(reader.fps, target.fps, target.frames)
    next_wanted: int | None = next(wanted)
    kept: dict[int, np.ndarray] = {}  # source index -> [target.height, target.width, 3]
    last: tuple[int, Decoded] | None = None  # latest decoded frame, unconverted: a short clip repeats it
    geometry: tuple[float, int, int, int, int] | None = None
    size = (0, 0)

    def convert(frame: Decoded) -> np.ndarray:  # [target.height, target.width, 3]
        assert geometry is not None  # set from the first frame
        scale, rh, rw, top, left = geometry
        if (rh, rw) == size:
            out = reader.rgb(frame)
        elif isinstance(frame, np.ndarray):
            out = _cv2_resize(reader.rgb(frame), rh, rw, scale)
        else:
            out = reader.rgb(frame, (rh, rw), SHRINK if scale < 1 else ENLARGE)
        return out[top : top + target.height, left : left + target.width]

    for index, frame in reader:
        if geometry is None:
            size = reader.size(frame)
            geometry = _cover(*size, target.height, target.width)
        if index == next_wanted:
            kept[index] = convert(frame)
            while next_wanted == index:  # a slower source shows one frame several times
                next_wanted = next(wanted, None)
        last = index, frame
        if next_wanted is None:  # every frame needed is decoded: the rest is never read
            break
    if last is None:
        raise VideoError(reader.path, "zero frames decoded")
    if next_wanted is not None:  # the clip ended first: its length is counted exactly
        source_frames, known = reader.decoded, "decoded"
    elif reader.stated_frames is not None and reader.stated_frames >= reader.decoded:
        source_frames, known = reader.stated_frames, "stated"
    else:
        source_frames, known = reader.decoded, "at_least"
    idx, padded = resample_indices(source_frames, reader.fps, target.fps, target.frames)
    if last[0] not in kept and last[0] in idx:  # the last frame, repeated to pad a short clip
        kept[last[0]] = convert(last[1])
    scale, _, _, top, left = geometry
    record = StandardiseRecord(
        source_fps=reader.fps,
        source_frames=source_frames,
        source_size=size,
        frame_indices=idx,
        padded_frames=padded,
        scale=scale,
        crop=(top, left, target.height, target.width),
        source_frames_from=known,
    )
    frames = np.stack([kept[i] for i in idx])  # [F, target.height, target.width, 3]
    warn_padded(str(reader.path), record)
    return Video(frames, target.fps, str(reader.path)), record


def read_standardised(
    path: str | Path, target: StandardiseTarget, frames_fps: float = DEFAULT_FRAMES_FPS
) -> tuple[Video, StandardiseRecord]:
    """``standardise(read_video(path, frames_fps=frames_fps), target)`` without decoding the whole clip
    at full size: see ``standardise_stream``."""
    with ClipReader(path, frames_fps) as reader:
        return standardise_stream(reader, target)
