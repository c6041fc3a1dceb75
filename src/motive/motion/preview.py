"""Pictures of a motion mask, so a user can see what the mask found before trusting it.

``overlay`` tints each pixel by its weight (untinted where W = 0, so still parts show the plain
video). ``write_preview`` writes the clip and its overlay side by side as a video; ``contact_sheet``
lays sampled frames out in rows: the frame, the mask without camera compensation and, when
compensation is on, the mask after it. The first frame of each new shot is marked CUT.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from motive.data.video import write_video
from motive.motion.flow import resize_frames, work_shape

PREVIEW_SIZE = 320  # long side of preview frames
SHEET_COLUMNS = 8
CAPTION_H = 18
RED = (220, 40, 40)


def overlay(frames: np.ndarray, weights: np.ndarray, strength: float = 0.75) -> np.ndarray:
    """Frames ``[F, H, W, 3]`` uint8 tinted by weights ``[F, h, w]`` in [0, 1] (any grid; resized to
    the frames): colour = W on the inferno map, opacity ``strength``·√W."""
    h, w = frames.shape[1:3]
    out = np.empty_like(frames)
    for f, (frame, weight) in enumerate(zip(frames, weights)):
        wf = np.clip(cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)  # [H, W]
        heat = cv2.applyColorMap((wf * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]  # RGB
        alpha = (strength * np.sqrt(wf))[..., None]  # opacity grows with √W: weak weights stay visible
        out[f] = (frame * (1 - alpha) + heat * alpha).astype(np.uint8)
    return out


def _caption(tile: np.ndarray, text: str, colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """``tile`` with a dark caption strip above it."""
    strip = np.zeros((CAPTION_H, tile.shape[1], 3), np.uint8)
    cv2.putText(strip, text, (3, CAPTION_H - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return np.concatenate([strip, tile])


def _small(frames: np.ndarray) -> np.ndarray:
    return resize_frames(frames, work_shape(*frames.shape[1:3], PREVIEW_SIZE))


def write_preview(
    path: str | Path, frames: np.ndarray, weights: np.ndarray, fps: float, cuts: list[int]
) -> Path:
    """Animated preview: each frame beside its mask overlay (``.mp4`` H.264, ``.gif`` or any suffix
    ``write_video`` knows), at most ``PREVIEW_SIZE`` pixels on the long side per panel."""
    small = _small(frames)  # [F, h, w, 3]
    tinted = overlay(small, weights)
    panels = []
    for f, (a, b) in enumerate(zip(small, tinted)):
        label = f"frame {f}" + ("  CUT" if f in cuts else "")
        colour = RED if f in cuts else (255, 255, 255)
        panels.append(np.concatenate([_caption(a, label, colour), _caption(b, "motion mask W")], axis=1))
    return write_video(path, np.stack(panels), fps)


def contact_sheet(
    frames: np.ndarray,
    raw_weights: np.ndarray,
    weights: np.ndarray | None,
    cuts: list[int],
    title: str,
    columns: int = SHEET_COLUMNS,
) -> np.ndarray:
    """One RGB image ``[H', W', 3]``: ``columns`` evenly spaced frames (cut frames included), under
    each its mask overlay without compensation and, if ``weights`` is given, with compensation."""
    n = len(frames)
    shown_cuts = cuts[: columns // 2]  # at most half the columns go to cuts
    even = np.linspace(0, n - 1, min(columns - len(shown_cuts), n)).round().astype(int)
    picks = sorted(set(even.tolist()) | set(shown_cuts))
    small = _small(frames[picks])  # [K, h, w, 3]
    rows = [("frame", small), ("mask (raw flow)", overlay(small, raw_weights[picks]))]
    if weights is not None:
        rows.append(("mask (camera compensated)", overlay(small, weights[picks])))
    lines = []
    for name, tiles in rows:
        cells = []
        for p, tile in zip(picks, tiles):
            cut = p in cuts
            text = f"{p}" + (" CUT" if cut else "") + (f"  {name}" if p == picks[0] else "")
            cells.append(_caption(tile, text, RED if cut else (255, 255, 255)))
        lines.append(np.concatenate(cells, axis=1))
    sheet = np.concatenate(lines, axis=0)
    header = np.full((24, sheet.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, sheet], axis=0)


def write_contact_sheet(path: str | Path, sheet: np.ndarray) -> Path:
    """Save an RGB image as PNG."""
    path = Path(path)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write the contact sheet")
    return path
