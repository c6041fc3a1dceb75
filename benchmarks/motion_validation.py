"""Motion-stage validation on ../shared/data (BENCHMARKS.md "Motion masks").

1. Endpoint error of every flow back-end/preset on every flow-GT pair, at the pair's own resolution
   and at the default working resolution, against the reference EPE of plain DIS-medium.
2. Camera compensation on every clip: residual / raw mean flow, camera_only, uniformity, cuts.
3. Hard cuts against MANIFEST.md, Newton's-cradle mask concentration, anchor mode composed vs direct.

Run: ``.venv/bin/python benchmarks/motion_validation.py`` (no arguments; ends with one JSON line).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from motive.data.video import read_video
from motive.motion import MaskConfig, compute_motion
from motive.motion.flow import (
    DIS_PRESETS,
    FARNEBACK_PRESETS,
    endpoint_error,
    get_flow,
    resize_frames,
    work_shape,
)
from motive.motion.validation import (
    EXPECTED_CUTS,
    FLOW_CASES,
    RATIO_TARGETS,
    REFERENCE_EPE,
    camera_category,
    load_flow_case,
    mass_on_changing_pixels,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DEFAULT = MaskConfig()
BACKENDS = [("dis", p) for p in DIS_PRESETS] + [("farneback", p) for p in FARNEBACK_PRESETS]
ANCHOR_CLIPS = {
    "animatediff__m01_03_pan_left.gif": 16,
    "animatediff__m01_01_zoom_in.gif": 16,
    "animatediff__m01_08_roll_clockwise.gif": 16,
    "cotracker__paragliding-launch.mp4": 33,
    "sam2__bedroom.mp4": 33,
    "sam2__05_default_juggle.mp4": 33,
}


def pair_flow(a: np.ndarray, b: np.ndarray, flow: str, preset: str, work_size: int | None) -> np.ndarray:
    """Full-resolution flow a → b through ``compute_motion`` (the pipeline's own resize and rescale)."""
    config = MaskConfig(flow=flow, preset=preset, work_size=work_size, cut_detection=False)
    return compute_motion(np.stack([a, b]), config).full_flow(0)


def epe_table() -> dict:
    cases = {c: load_flow_case(DATA, c) for c in FLOW_CASES}
    rows = {}
    print("\n## Endpoint error (px, valid pixels) — native resolution | long side 256")
    print("| back-end | " + " | ".join(c.split("_", 1)[1] for c in cases) + " | within 10% of ref |")
    print("|---|" + "---|" * (len(cases) + 1))
    print("| reference DIS-medium | " + " | ".join(f"{REFERENCE_EPE[c]:.2f}" for c in cases) + " | |")
    for flow, preset in BACKENDS:
        for work in (None, DEFAULT.work_size):
            name = f"{flow} {preset}" + ("" if work is None else f" @{work}")
            epe = {
                c: endpoint_error(pair_flow(a, b, flow, preset, work), gt) for c, (a, b, gt) in cases.items()
            }
            ok = sum(epe[c] <= 1.1 * REFERENCE_EPE[c] for c in cases)
            rows[name] = {k: round(v, 3) for k, v in epe.items()}
            mark = " (default)" if (flow, preset) == (DEFAULT.flow, DEFAULT.preset) else ""
            print(f"| {name}{mark} | " + " | ".join(f"{v:.2f}" for v in epe.values()) + f" | {ok}/7 |")
    return rows


def market_sensitivity(draws: int = 8) -> dict:
    """EPE of the default and of DIS-medium on Sintel market_5 when every grey level moves by ±1."""
    a, b, gt = load_flow_case(DATA, "sintel_clean_market_5")
    rng = np.random.default_rng(0)
    out = {}
    for preset in ("medium", DEFAULT.preset):
        values = []
        for _ in range(draws):
            noisy = [
                np.clip(x.astype(int) + rng.integers(-1, 2, x.shape[:2])[..., None], 0, 255) for x in (a, b)
            ]
            values.append(
                endpoint_error(pair_flow(*[n.astype(np.uint8) for n in noisy], "dis", preset, None), gt)
            )
        out[preset] = {
            "median": round(float(np.median(values)), 2),
            "min": round(min(values), 2),
            "max": round(max(values), 2),
        }
    print(f"\nSintel market_5 under ±1 grey-level noise ({draws} draws, native): {out}")
    return out


def camera_table() -> dict:
    rows = {}
    print("\n## Camera compensation (default flow, homography, whole clips)")
    print(
        "| clip | group | frames | raw px | residual px | ratio | target | camera_only | uniformity raw → comp | static pairs | cuts | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path in sorted((DATA / "videos").iterdir()):
        video = read_video(path)
        start = time.perf_counter()
        s = compute_motion(video.frames, MaskConfig(camera_compensation=True)).stats
        seconds = time.perf_counter() - start
        group = camera_category(path.name)
        ratio = s["residual_mean_flow"] / s["raw_mean_flow"] if s["raw_mean_flow"] else 1.0
        low, high = RATIO_TARGETS.get(group, (None, None))
        passed = (low is None or ratio >= low) and (high is None or ratio <= high)
        target = (
            ""
            if group not in RATIO_TARGETS
            else ("≥" if low else "≤") + f" {low or high}" + (" ok" if passed else " MISS")
        )
        fits = [c for c in s["camera"] if c is not None]
        static = sum(c["static"] for c in fits)
        rows[path.name] = {
            "group": group,
            "raw": s["raw_mean_flow"],
            "residual": s["residual_mean_flow"],
            "ratio": round(ratio, 3),
            "pass": passed if group in RATIO_TARGETS else None,
            "camera_only": s["camera_only"],
            "uniformity_raw": s["raw_uniformity"],
            "uniformity_comp": s["uniformity"],
            "cuts": s["cuts"],
            "seconds": round(seconds, 2),
        }
        print(
            f"| {path.stem} | {group} | {s['frames']} | {s['raw_mean_flow']:.2f} | {s['residual_mean_flow']:.2f} | "
            f"{ratio:.2f} | {target} | {s['camera_only']} | {s['raw_uniformity']:.2f} → {s['uniformity']:.2f} | "
            f"{static}/{len(fits)} | {s['cuts']} | {seconds:.1f} |"
        )
    return rows


def cut_check(camera: dict) -> dict:
    found = {clip: row["cuts"] for clip, row in camera.items()}
    expected = {clip: EXPECTED_CUTS.get(clip, []) for clip in found}
    wrong = {clip: found[clip] for clip in found if found[clip] != expected[clip]}
    print("\n## Hard cuts")
    for clip, cuts in EXPECTED_CUTS.items():
        print(f"{clip}: expected {cuts}, found {found[clip]}")
    print(f"clips with a wrong cut list (false or missed cuts): {wrong or 'none'}")
    return {"expected_found": {c: found[c] == v for c, v in EXPECTED_CUTS.items()}, "wrong": wrong}


def newton() -> dict:
    video = read_video(DATA / "videos" / "imageio__newtonscradle.gif")
    share, area = mass_on_changing_pixels(video.frames, compute_motion(video.frames).weights)
    print(
        f"\n## Newton's cradle: {share:.1%} of the mask's weight on the {area:.1%} of pixels that change ({share / area:.1f}x uniform)"
    )
    return {
        "weight_share": round(share, 3),
        "pixel_share": round(area, 3),
        "concentration": round(share / area, 2),
    }


def warp_error(first: np.ndarray, later: np.ndarray, flow: np.ndarray) -> float:
    """Mean |later(x + flow(x)) − first(x)| (grey levels) over points that stay in the frame."""
    import cv2

    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = xs + flow[..., 0], ys + flow[..., 1]
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    warped = cv2.remap(later.astype(np.float32), mx, my, cv2.INTER_LINEAR)
    return float(np.abs(warped - first.astype(np.float32)).mean(axis=-1)[inside].mean())


def anchor_table() -> dict:
    """Anchor mode (frame 0 → f) composed from consecutive flows vs estimated directly."""
    rows = {}
    fn = get_flow(DEFAULT.flow, DEFAULT.preset)
    print("\n## Anchor mode: photometric error of frame f warped back to frame 0 (grey levels, mean over f)")
    print("| clip | composed (ours) | direct 0 → f | zero flow |")
    print("|---|---|---|---|")
    for clip, frames in ANCHOR_CLIPS.items():
        video = read_video(DATA / "videos" / clip, max_frames=frames)
        small = resize_frames(video.frames, work_shape(*video.frames.shape[1:3], DEFAULT.work_size))
        composed = compute_motion(small, MaskConfig(mode="anchor", cut_detection=False)).flow
        errs = {"composed": [], "direct": [], "zero": []}
        for f in range(1, len(small)):
            errs["composed"].append(warp_error(small[0], small[f], composed[f - 1]))
            errs["direct"].append(warp_error(small[0], small[f], fn(small[0], small[f])))
            errs["zero"].append(warp_error(small[0], small[f], np.zeros_like(composed[0])))
        rows[clip] = {k: round(float(np.mean(v)), 2) for k, v in errs.items()}
        print(
            f"| {Path(clip).stem} | {rows[clip]['composed']:.2f} | {rows[clip]['direct']:.2f} | {rows[clip]['zero']:.2f} |"
        )
    return rows


def main() -> int:
    if not DATA.is_dir():
        print(f"{DATA.resolve()} is absent: nothing to validate on")
        return 1
    figures = {"epe": epe_table(), "market_5_noise": market_sensitivity()}
    camera = camera_table()
    figures.update(camera=camera, cuts=cut_check(camera), newton=newton(), anchor=anchor_table())
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
