"""Hard cuts (shot boundaries): the flow across a cut is not motion and must not enter the mask.

A cut at frame i (the first frame of a new shot) is a jump in both the colour histogram and the
pixels between frames i−1 and i. Fast motion changes pixels but not the histogram; a fade or a title
card changes the histogram slowly. To reject one-frame flashes, frame i must also differ from frame
i−2 and frame i+1 from frame i−1 (content before and after the boundary differs, not one frame).
Everything is measured on small thumbnails, so cost does not grow with resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from motive.motion.flow import resize_frames, work_shape

THUMB_SIZE = 128  # long side of the thumbnails compared
HIST_BINS = (16, 4, 4)  # hue, saturation, value
HIST_JUMP = 0.3  # total-variation distance of the HSV histograms at threshold 1
PIXEL_JUMP = 0.1  # mean absolute grey difference (share of full scale) at threshold 1


def _histograms(thumbs: np.ndarray) -> np.ndarray:
    """Normalised HSV histograms ``[F, bins]`` of RGB thumbnails ``[F, h, w, 3]``."""
    out = []
    for frame in thumbs:
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
        out.append(hist / max(hist.sum(), 1.0))
    return np.array(out)


def cut_scores(frames: np.ndarray) -> np.ndarray:
    """Per frame i, how strongly it starts a new shot ``[F]`` (≥ 1 at the default threshold; frame 0
    scores 0). The score is the smallest of the histogram and pixel jumps, each divided by its
    threshold, over the frame pairs (i−1, i), (i−2, i) and (i−1, i+1) that exist."""
    n = len(frames)
    thumbs = resize_frames(frames, work_shape(*frames.shape[1:3], THUMB_SIZE))  # [F, h, w, 3]
    hists = _histograms(thumbs)  # [F, bins]
    grey = thumbs.astype(np.float32).mean(axis=-1) / 255.0  # [F, h, w]

    def jump(a: int, b: int) -> float:
        hist = 0.5 * float(np.abs(hists[a] - hists[b]).sum()) / HIST_JUMP
        pixel = float(np.abs(grey[a] - grey[b]).mean()) / PIXEL_JUMP
        return min(hist, pixel)

    scores = np.zeros(n, np.float32)
    for i in range(1, n):
        pairs = [(i - 1, i)] + [(i - 2, i)] * (i >= 2) + [(i - 1, i + 1)] * (i + 1 < n)
        scores[i] = min(jump(a, b) for a, b in pairs)
    return scores


def detect_cuts(frames: np.ndarray, threshold: float = 1.0) -> list[int]:
    """Indices of the first frame of each new shot in ``frames`` ``[F, H, W, 3]`` (none: one shot).
    Lower ``threshold`` finds more (softer) cuts."""
    if len(frames) < 2:
        return []
    return [int(i) for i in np.flatnonzero(cut_scores(frames) >= threshold)]


def shot_starts(frames: int, cuts: list[int]) -> np.ndarray:
    """For every frame, the index of the first frame of its shot ``[F]``."""
    starts = np.zeros(frames, np.int64)
    for c in cuts:
        starts[c:] = c
    return starts
