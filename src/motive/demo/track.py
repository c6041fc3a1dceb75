"""Track the motion world's object in a clip, and name its motion from the track.

The world knows what each clip shows (the object's colour, the two tones of its body, a grey-ish
textured background), so a generated clip can be scored against ground truth without a learned
tracker: per frame, the pixels within ``TONE_TOLERANCE`` of one of the object's two tones (its colour,
and its shaded half at ``DARK_TONE`` of it) are the object; their centroid is where it is, the line from
the shaded half's centroid to the lit half's is its orientation, and the background's horizontal shift
between frames (the shift that best maps one frame's background onto the next) is the camera. ``motion_features``
turns a track into a fixed-length description in scene coordinates (camera removed, mirrored so the
object travels rightward), and ``MotionClassifier`` (a ridge classifier, fitted on the world's own
clips) names the motion. ``tracker_check`` validates both on true clips against the world's recorded
trajectories; ``generated_motion`` scores a generated clip with them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from motive.data.video import read_video
from motive.demo.render import Trajectory, trajectory
from motive.demo.world import COLOURS, MOTIONS, ClipSpec, WorldConfig, sample_specs

DARK_TONE = 0.55  # the shaded half of the object's body (``render_clip``'s two-tone body)
TONE_TOLERANCE = 0.16  # RGB distance (0–1 scale) within which a pixel is taken for the object
MIN_PIXELS = 6  # fewer object pixels than this in a frame: the object is lost there


@dataclass
class Track:
    """Where the object is in each frame of a clip (image pixels; NaN where it is lost)."""

    x: np.ndarray  # [F] centroid, pixels from the left edge (pixel i spans [i, i+1])
    y: np.ndarray  # [F] centroid, pixels from the top
    angle: np.ndarray  # [F] orientation of the lit half, radians (render_clip's θ)
    cam: np.ndarray  # [F] horizontal camera offset relative to frame 0, pixels
    pixels: np.ndarray  # [F] object pixels found

    @property
    def found(self) -> np.ndarray:
        """[F] whether the object was found in each frame."""
        return self.pixels >= MIN_PIXELS


def object_masks(frame: np.ndarray, colour: str) -> tuple[np.ndarray, np.ndarray]:
    """(lit, shaded) boolean masks [H, W] of the pixels of ``frame`` (uint8 [H, W, 3]) that show the
    object's two tones."""
    rgb = frame.astype(np.float32) / 255.0
    c = np.array(COLOURS[colour], dtype=np.float32)
    lit = np.linalg.norm(rgb - c, axis=-1) < TONE_TOLERANCE
    shaded = np.linalg.norm(rgb - DARK_TONE * c, axis=-1) < TONE_TOLERANCE
    return lit & ~shaded, shaded


def object_pixels(frames: np.ndarray, colour: str) -> np.ndarray:
    """Boolean [F, H, W]: the pixels of each frame of ``frames`` (uint8 [F, H, W, 3]) that show the
    ``colour`` object's body (``object_body``)."""
    return np.stack([object_body(*object_masks(frame, colour))[0] for frame in frames])


def object_body(lit: np.ndarray, shaded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(body, lit) masks [H, W] kept to the disc around the lit pixels that one object can cover: the
    shaded tone of a pale object is also found in darker background texture, but not next to the lit
    half. The disc's radius is twice that of a disc of twice the lit area (the lit half is half the body)."""
    if not lit.any():
        return lit | shaded, lit
    ys, xs = np.nonzero(lit)
    reach = 2.0 * math.sqrt(2.0 * len(ys) / math.pi) + 1.0
    yy, xx = np.mgrid[0 : lit.shape[0], 0 : lit.shape[1]]
    near = np.hypot(yy - ys.mean(), xx - xs.mean()) <= reach
    return (lit | shaded) & near, lit & near


MAX_PAN = 4.0  # largest camera travel between two frames that is looked for, pixels


def _shifted(img: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``img`` [H, W] sampled at x + d for each shift of ``d`` [G] (linear interpolation; NaN outside
    the frame) → [G, H, W]."""
    x = np.arange(img.shape[1])[None] + d[:, None]  # [G, W]
    i = np.floor(x).astype(int)
    frac = x - i
    ok = (i >= 0) & (i + 1 < img.shape[1])
    i = np.clip(i, 0, img.shape[1] - 2)
    out = np.moveaxis(img[:, i] * (1 - frac) + img[:, i + 1] * frac, 1, 0)  # [G, H, W]
    out[~np.broadcast_to(ok[:, None], out.shape)] = np.nan
    return out


def _camera_step(a: np.ndarray, b: np.ndarray, blank: np.ndarray) -> float:
    """How far the camera moved right from grey frame ``a`` to ``b`` (pixels): the d that makes
    b(x) ≈ a(x + d) over the background (``blank``: the object's pixels in either frame, left out).
    Each row's mean is removed first, so the floor's fixed shading does not pin d at 0."""
    a = a - a.mean(1, keepdims=True)
    b = np.where(blank, np.nan, b - b.mean(1, keepdims=True))
    step = 0.25
    grid = np.arange(-MAX_PAN, MAX_PAN + 1e-9, step)  # [G]
    costs = np.nanmean((b[None] - _shifted(a, grid)) ** 2, axis=(1, 2))  # [G], every shift at once
    k = int(np.clip(np.argmin(costs), 1, len(grid) - 2))
    lo, mid, hi = costs[k - 1 : k + 2]  # the parabola through the best grid point and its neighbours
    curve = lo - 2 * mid + hi
    return float(grid[k] + (0.5 * step * (lo - hi) / curve if curve > 0 else 0.0))


def track_clip(frames: np.ndarray, colour: str) -> Track:
    """Track the ``colour`` object through ``frames`` (uint8 [F, H, W, 3])."""
    n = len(frames)
    x, y, angle, pixels = (np.full(n, np.nan) for _ in range(4))
    grey = frames.astype(np.float32).mean(-1)  # [F, H, W]
    ys, xs = np.mgrid[0 : frames.shape[1], 0 : frames.shape[2]].astype(np.float64) + 0.5
    blanks = []
    for f, frame in enumerate(frames):
        body, lit = object_body(*object_masks(frame, colour))
        blanks.append(cv2.dilate(body.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
        pixels[f] = body.sum()
        if pixels[f] < MIN_PIXELS:
            continue
        x[f], y[f] = xs[body].mean(), ys[body].mean()
        shaded = body & ~lit
        if lit.any() and shaded.any():
            dx, dy = xs[lit].mean() - xs[shaded].mean(), ys[lit].mean() - ys[shaded].mean()
            angle[f] = math.atan2(-dx, dy)  # the lit half lies along (−sin θ, cos θ)
    steps = [_camera_step(grey[f], grey[f + 1], blanks[f] | blanks[f + 1]) for f in range(n - 1)]
    return Track(x, y, angle, np.concatenate([[0.0], np.cumsum(steps)]), pixels)


def trajectory_error(track: Track, truth: Trajectory, first: int = 0) -> float:
    """Mean distance (pixels) between the tracked centroid and the true object centre in the image,
    over the frames from ``first`` on where the object was found (NaN if it never was)."""
    d = np.hypot(track.x - (truth.x - truth.cam), track.y - truth.y)[first:]
    return float(np.nanmean(d)) if track.found[first:].any() else float("nan")


def survival(track: Track) -> float:
    """Share of frames in which the object was found."""
    return float(track.found.mean())


def _filled(v: np.ndarray) -> np.ndarray:
    """NaNs replaced by the nearest found value (zeros if none was found)."""
    ok = ~np.isnan(v)
    if not ok.any():
        return np.zeros_like(v)
    idx = np.arange(len(v))
    return np.interp(idx, idx[ok], v[ok])


def motion_features(track: Track, height: int, frames: int = 17) -> np.ndarray:
    """A fixed-length description of a track: the object's scene-coordinate displacement from frame 0
    (camera removed, mirrored so it travels rightward, in frame heights), its rotation since frame 0
    (unsigned), the camera's travel and the found share, resampled to ``frames`` time steps, and a few shape figures (height, vertical range and path, how early the travel is done,
    horizontal turns, the found share) → [4·frames + 8]."""
    x, y = _filled(track.x) + track.cam, _filled(track.y)
    turn = np.unwrap(2 * _filled(track.angle)) / 2  # the lit half's direction is defined up to ±π for a ball
    t_old, t_new = np.linspace(0, 1, len(x)), np.linspace(0, 1, frames)
    dx, dy = np.interp(t_new, t_old, x - x[0]), np.interp(t_new, t_old, y - y[0])
    rot = np.interp(t_new, t_old, turn - turn[0])
    cam = np.interp(t_new, t_old, track.cam)
    side = 1.0 if dx[-1] >= 0 else -1.0
    sx = side * dx / height
    third = len(sx) // 3
    shape = [
        y[0] / height,  # resting or in mid-air at the start
        np.mean(y) / height,
        np.ptp(dy) / height,  # how far it goes up and down ...
        np.abs(np.diff(dy)).sum() / height,  # ... and how often
        sx[third] / (abs(sx[-1]) + 0.02),  # how early the horizontal travel is done
        sx[2 * third] / (abs(sx[-1]) + 0.02),
        np.abs(np.diff(np.sign(np.diff(sx)))).sum() / 2,  # horizontal turns (a swing's)
        survival(track),
    ]
    return np.concatenate([sx, dy / height, np.abs(rot) / math.pi, np.abs(cam) / height, shape])


@dataclass
class MotionClassifier:
    """A ridge classifier of ``motion_features`` (one-vs-all least squares on standardised features)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # [D + 1, K]
    motions: list[str]

    @classmethod
    def fit(cls, features: np.ndarray, motions: list[str], ridge: float = 1.0) -> MotionClassifier:
        """Fit on ``features`` [N, D] labelled ``motions`` (N names from the world's ``MOTIONS``)."""
        names = [m for m in MOTIONS if m in set(motions)]
        mean, scale = features.mean(0), features.std(0) + 1e-6
        x = np.hstack([(features - mean) / scale, np.ones((len(features), 1))])
        y = (np.array(motions)[:, None] == np.array(names)[None]).astype(float)  # [N, K]
        w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
        return cls(mean, scale, w, names)

    def predict(self, features: np.ndarray) -> list[str]:
        """The motion named for each row of ``features`` [N, D]."""
        x = np.hstack([(features - self.mean) / self.scale, np.ones((len(features), 1))])
        return [self.motions[k] for k in np.argmax(x @ self.weights, 1)]


def world_specs(world: Path, split: str) -> tuple[WorldConfig, list[ClipSpec], list[str]]:
    """A written world's settings, and the specification (``sample_specs``) and video file (relative to
    the split's folder) of each clip of its ``split``, in order."""
    config = WorldConfig(**json.loads((world / "world.json").read_text()))
    table = pd.read_csv(world / split / "metadata.csv")
    return config, sample_specs(config, split), list(table["video"])


def world_tracks(world: Path, split: str) -> tuple[list[Track], list[ClipSpec]]:
    """Every clip of a written world's ``split`` tracked (decoded from its files, as a model would see
    them), with the clip specifications that rendered them (so their trajectories)."""
    _, specs, videos = world_specs(world, split)
    tracks = [track_clip(read_video(world / split / rel).frames, s.colour) for s, rel in zip(specs, videos)]
    return tracks, specs


def fit_classifier(world: str | Path, split: str = "base") -> MotionClassifier:
    """A ``MotionClassifier`` fitted on the tracks of a written world's ``split`` (true clips)."""
    world = Path(world)
    height = WorldConfig(**json.loads((world / "world.json").read_text())).height
    tracks, specs = world_tracks(world, split)
    return MotionClassifier.fit(
        np.stack([motion_features(t, height) for t in tracks]), [s.motion for s in specs]
    )


def generated_motion(
    video: np.ndarray,
    colour: str,
    motion: str,
    classifier: MotionClassifier,
    truth: Trajectory | None = None,
) -> dict:
    """How the object moves in a clip generated for a ``colour`` object's ``motion`` (uint8
    [F, H, W, 3]): the motion ``classifier`` names from its track (``named_motion``), whether that is
    the one asked for (``motion_accuracy``, 1.0 or 0.0), the share of frames the object is found in
    (``survival``), and the ``track``. Given the ``truth`` of a clip whose first frame the video started
    at, also ``trajectory_error_px`` over the generated frames after it (NaN if the object is lost)."""
    track = track_clip(video, colour)
    named = classifier.predict(motion_features(track, video.shape[1])[None])[0]
    out = {
        "motion_accuracy": float(named == motion),
        "survival": survival(track),
        "named_motion": named,
        "track": track,
    }
    if truth is not None:
        out["trajectory_error_px"] = trajectory_error(track, truth, first=1)
    return out


def world_trajectories(world: str | Path, split: str) -> dict[str, Trajectory]:
    """The true trajectory of every clip of a written world's ``split``, by its video file's name."""
    config, specs, videos = world_specs(Path(world), split)
    return {Path(rel).name: trajectory(s, config.height, config.width) for s, rel in zip(specs, videos)}


def draw_track(video: np.ndarray, track: Track, scale: int = 3) -> np.ndarray:
    """``video`` (uint8 [F, H, W, 3]) enlarged ``scale``× with the tracked path up to each frame drawn
    over it (white line, red dot where the object is; nothing where it is lost) → [F, sH, sW, 3]."""
    out = []
    points: list[tuple[int, int]] = []
    for f, frame in enumerate(video):
        big = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        if track.found[f]:
            points.append((int(track.x[f] * scale), int(track.y[f] * scale)))
        if len(points) > 1:
            cv2.polylines(big, [np.array(points, np.int32)], False, (255, 255, 255), 1, cv2.LINE_AA)
        if track.found[f]:
            cv2.circle(big, points[-1], scale, (255, 0, 0), -1, cv2.LINE_AA)
        out.append(big)
    return np.stack(out)


def tracker_check(world: str | Path, fit_split: str = "base", test_split: str = "eval") -> dict:
    """The tracker on true clips: trajectory error against the recorded trajectories and survival on
    ``test_split``, and the accuracy on it of a ``MotionClassifier`` fitted on ``fit_split``'s tracks."""
    world = Path(world)
    config = WorldConfig(**json.loads((world / "world.json").read_text()))
    classifier = fit_classifier(world, fit_split)
    tracks, specs = world_tracks(world, test_split)
    named = classifier.predict(np.stack([motion_features(t, config.height) for t in tracks]))
    errors = np.array(
        [trajectory_error(t, trajectory(s, config.height, config.width)) for t, s in zip(tracks, specs)]
    )
    truth = [s.motion for s in specs]
    return {
        "clips": len(tracks),
        "trajectory_error_px": float(np.nanmean(errors)),
        "trajectory_error_px_max": float(np.nanmax(errors)),
        "survival": float(np.mean([survival(t) for t in tracks])),
        "motion_accuracy": float(np.mean([a == b for a, b in zip(named, truth)])),
        "confusions": {f"{a}->{b}": int(n) for (a, b), n in Counter(zip(truth, named)).items() if a != b},
    }
