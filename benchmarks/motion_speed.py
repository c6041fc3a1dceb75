"""Speed of flow + mask for one standardised clip (81 frames, 480×832) per back-end and working size.

Times ``compute_motion`` (resize, cut detection, flow, camera fits, normalisation, upsampling to the
full-resolution W) followed by ``latent_mask`` on DAVIS paragliding-launch from ../shared/data (a
following pan; a synthetic panning texture with a moving square when the data is absent). Fidelity:
the correlation of each setting's latent mask W̃ with the one plain DIS-medium makes at full
resolution (the mask before working resolutions existed), averaged over that clip and two
static-camera clips with people moving (SAM2 bedroom, juggle), all standardised to 81×480×832.

Run: ``.venv/bin/python benchmarks/motion_speed.py`` (no arguments; ends with one JSON line).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from motive.data.standardise import StandardiseTarget, standardise
from motive.data.video import read_video
from motive.motion import MaskConfig, compute_motion, latent_mask

VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
CLIPS = ["cotracker__paragliding-launch.mp4", "sam2__bedroom.mp4", "sam2__05_default_juggle.mp4"]
SIZES = [128, 256, 416, None]  # long side; None: full resolution
SETTINGS = [("dis", p) for p in ("ultrafast", "fast", "medium", "balanced", "fine")] + [
    ("farneback", "balanced")
]


def clips() -> dict[str, np.ndarray]:
    """Name → 81 frames of 480×832 uint8 RGB; the first one is timed."""
    target = StandardiseTarget(fps=16.0, frames=81, height=480, width=832)
    if (VIDEOS / CLIPS[0]).is_file():
        return {name: standardise(read_video(VIDEOS / name), target)[0].frames for name in CLIPS}
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.uniform(0, 255, (480, 832 + 4 * 81, 3)).astype(np.float32), (0, 0), 3)
    scene = cv2.normalize(scene, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    frames = np.stack([scene[:, 4 * f : 4 * f + 832].copy() for f in range(81)])
    for f in range(81):
        frames[f, 200:280, 100 + 5 * f : 180 + 5 * f] = (255, 80, 40)
    return {"synthetic pan + square": frames}


def timed(frames: np.ndarray, config: MaskConfig, runs: int) -> tuple[float, torch.Tensor]:
    """Best of ``runs`` wall-clock seconds for flow + mask, and the latent mask."""
    best, mask = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        weights = compute_motion(frames, config).weights
        mask = latent_mask(weights, 8, 4)
        best = min(best, time.perf_counter() - start)
    return best, mask


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.numpy().ravel(), b.numpy().ravel())[0, 1])


def main() -> int:
    videos = clips()
    timed_name, frames = next(iter(videos.items()))
    pairs = len(frames) - 1
    print(f"timed clip: {timed_name} {frames.shape}; fidelity clips: {list(videos)}")
    print(f"OpenCV threads {cv2.getNumThreads()}, cores {os.cpu_count()}")
    compute_motion(frames[:5])  # warm-up (imports, OpenCV thread pool)
    reference = MaskConfig(preset="medium", work_size=None)
    ref_seconds, _ = timed(frames, reference, 1)
    refs = {name: timed(v, reference, 1)[1] for name, v in videos.items()}
    print(
        "\n| back-end | work size | s per clip | pairs/s | W̃ corr. vs DIS-medium full res (per clip) | mean |"
    )
    print("|---|---|---|---|---|---|")
    rows = {}
    for flow, preset in SETTINGS:
        for size in SIZES if flow == "dis" else [256, None]:
            config = MaskConfig(flow=flow, preset=preset, work_size=size)
            seconds, _ = timed(frames, config, 3 if size else 1)
            corr = [correlation(timed(v, config, 1)[1], refs[name]) for name, v in videos.items()]
            key = f"{flow} {preset} @{size or 'full'}"
            rows[key] = {
                "seconds": round(seconds, 3),
                "pairs_per_s": round(pairs / seconds, 1),
                "corr": round(float(np.mean(corr)), 4),
            }
            default = " (default)" if config == MaskConfig() else ""
            print(
                f"| {flow} {preset}{default} | {size or 'full (480×832)'} | {seconds:.2f} | {pairs / seconds:.0f} | "
                + " / ".join(f"{c:.3f}" for c in corr)
                + f" | {np.mean(corr):.3f} |"
            )
    comp_seconds, _ = timed(frames, MaskConfig(camera_compensation=True), 3)
    default_key = f"{MaskConfig().flow} {MaskConfig().preset} @{MaskConfig().work_size}"
    figures = {
        "timed_clip": timed_name,
        "default_seconds": rows[default_key]["seconds"],
        "default_with_compensation_seconds": round(comp_seconds, 3),
        "speedup_default_vs_medium_full": round(ref_seconds / rows[default_key]["seconds"], 2),
        "rows": rows,
    }
    print(
        f"\ndefault {default_key}: {rows[default_key]['seconds']:.2f} s per clip; with camera compensation {comp_seconds:.2f} s"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
