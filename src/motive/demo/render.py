"""Rendering and writing the motion world: each clip's trajectory (the ground truth of its motion),
its frames, and the splits as H.264 files plus ``metadata.csv`` — what a user would bring.

The world's factors, captions and clip specifications live in ``motive.demo.world``; this module
turns them into pixels and files.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from motive.data.video import write_video
from motive.demo.world import (
    COLOURS,
    MOTIONS,
    SPLITS,
    STILL,
    ClipSpec,
    WorldConfig,
    draw_size_and_direction,
    sample_specs,
)
from motive.files import atomic_path
from motive.parallel import exit_with_parent, forkserver_context

# ----------------------------------------------------------------------------------------------
# Trajectories: object centre (x, y) in scene pixels, its rotation, and the camera offset per frame
# ----------------------------------------------------------------------------------------------


@dataclass
class Trajectory:
    x: np.ndarray  # [F] object centre, scene coordinates
    y: np.ndarray  # [F]
    angle: np.ndarray  # [F] object rotation, radians
    cam: np.ndarray  # [F] horizontal camera offset (scene x of the image's left edge)
    radius: float
    pivot: tuple[float, float] | None = None  # swing: where the string hangs from


def trajectory(spec: ClipSpec, height: int, width: int) -> Trajectory:
    """Per-frame object pose and camera offset for ``spec``; deterministic from ``spec.seed``."""
    rng = np.random.default_rng(spec.seed)
    n = spec.frames
    t = np.linspace(0.0, 1.0, n)
    scale, direction = draw_size_and_direction(rng)
    r = scale * height * spec.size
    floor = 0.82 * height
    ground = floor - r
    x0 = width * rng.uniform(0.3, 0.7)
    x = np.full(n, x0)
    y = np.full(n, ground)
    angle = np.full(n, rng.uniform(0, 2 * math.pi))
    pivot = None
    m = spec.motion
    if m == "bounce":
        x0 = width * (0.5 - 0.25 * direction)
        x = x0 + direction * rng.uniform(0.3, 0.45) * width * t
        bounces = rng.uniform(1.6, 2.4)
        phase = (t * bounces + rng.uniform(0, 0.3)) % 1.0
        y = ground - 4 * rng.uniform(0.35, 0.5) * height * phase * (1 - phase)
    elif m == "roll":
        x0 = width * (0.5 - 0.3 * direction)
        x = x0 + direction * rng.uniform(0.45, 0.6) * width * t
        angle = angle[0] + (x - x0) / r  # rolling without slipping
    elif m == "slide":
        x0 = width * (0.5 - 0.3 * direction)
        x = x0 + direction * rng.uniform(0.45, 0.6) * width * (1 - (1 - t) ** 2)
    elif m == "float":
        mid = height * rng.uniform(0.35, 0.5)
        y = mid + rng.uniform(0.05, 0.08) * height * np.sin(
            2 * math.pi * rng.uniform(0.8, 1.2) * t + rng.uniform(0, 6.3)
        )
        x = x0 + direction * 0.08 * width * t
        angle = angle[0] + 0.25 * np.sin(2 * math.pi * t)
    elif m == "free_fall":
        y0 = height * rng.uniform(0.12, 0.2)
        land = rng.uniform(0.7, 0.9)  # fraction of the clip at which it lands
        g = 2 * (ground - y0) / land**2
        y = np.minimum(y0 + 0.5 * g * t**2, ground)
    elif m == "spin":
        y = np.full(n, rng.choice([ground, height * 0.45]))
        angle = angle[0] + direction * rng.uniform(1.5, 3.0) * math.pi * t
    elif m == "swing":
        pivot = (x0, height * 0.05)
        length = height * rng.uniform(0.45, 0.55)
        theta = rng.uniform(0.5, 0.8) * np.cos(2 * math.pi * rng.uniform(0.8, 1.3) * t + rng.uniform(0, 6.3))
        x = pivot[0] + length * np.sin(theta)
        y = pivot[1] + length * np.cos(theta)
        angle = angle[0] - theta
    elif m == "cartoon_hover":
        x0 = width * (0.5 - 0.35 * direction)
        ledge = height * rng.uniform(0.3, 0.42)
        t_off, t_drop = rng.uniform(0.3, 0.4), rng.uniform(0.7, 0.8)
        walk = direction * rng.uniform(0.35, 0.45) * width
        x = x0 + walk * np.minimum(t / t_off, 1.0)  # walks, then stops dead in mid-air
        drop = np.clip((t - t_drop) / 0.08, 0.0, 1.0)  # abrupt fall, within ~2 frames
        y = ledge + (ground - ledge) * drop
    elif m not in ("static", "camera_pan"):
        raise ValueError(f"unknown motion {m!r}")
    cam = np.zeros(n)
    if spec.camera != STILL:
        cam = direction * rng.uniform(0.2, 0.3) * width * t
    return Trajectory(x, y, angle, cam, r, pivot)


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

_BG_PALETTES = {
    "checkered": ((0.78, 0.74, 0.66), (0.36, 0.34, 0.32)),
    "striped": ((0.70, 0.78, 0.72), (0.32, 0.40, 0.36)),
    "dotted": ((0.80, 0.72, 0.78), (0.38, 0.30, 0.38)),
    "cloudy": ((0.72, 0.78, 0.86), (0.34, 0.40, 0.50)),
    "brick": ((0.76, 0.58, 0.48), (0.42, 0.30, 0.26)),
}


def _background_pattern(kind: str, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blend weight in [0, 1] between the two palette colours at scene coordinates (X, Y)."""
    period = rng.uniform(9, 13)
    if kind == "checkered":
        p = np.sin(math.pi * X / period) * np.sin(math.pi * Y / period)
        return 0.5 + 0.5 * np.tanh(3 * p)
    if kind == "striped":
        return 0.5 + 0.5 * np.tanh(3 * np.sin(2 * math.pi * (X + 0.6 * Y) / period))
    if kind == "dotted":
        d = np.hypot((X % period) - period / 2, (Y % period) - period / 2)
        return np.clip(period * 0.3 - d, 0, 1)
    if kind == "cloudy":
        acc = np.zeros_like(X)
        for scale in (24.0, 12.0, 6.0):
            a, b, c = rng.uniform(0, 2 * math.pi, 3)
            acc += np.sin(X / scale + a) * np.cos(Y / scale * 1.3 + b) + 0.5 * np.sin((X + Y) / scale + c)
        return 0.5 + 0.25 * acc / 1.5
    if kind == "brick":
        row = np.floor(Y / (period * 0.6))
        xs = X + (row % 2) * period / 2
        mortar = np.minimum(np.abs(((Y / (period * 0.6)) % 1) - 0.5), np.abs(((xs / period) % 1) - 0.5))
        return np.clip(2 * (0.5 - mortar) - 0.1, 0, 1)
    raise ValueError(f"unknown background {kind!r}")


def _fine_texture(X: np.ndarray, Y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multi-scale fine texture (sum of random gratings) so optical flow is well posed everywhere."""
    acc = np.zeros_like(X)
    for scale in (2.0, 3.5, 6.0):
        for _ in range(2):
            theta, phase = rng.uniform(0, math.pi), rng.uniform(0, 2 * math.pi)
            acc += np.sin((X * math.cos(theta) + Y * math.sin(theta)) / scale + phase)
    return acc / 6.0


def _object_sdf(shape: str, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) of a shape of size r centred at the origin."""
    if shape == "ball":
        return np.hypot(u, v) - r
    if shape == "box":
        return np.maximum(np.abs(u), np.abs(v)) - 0.85 * r
    if shape == "diamond":
        return (np.abs(u) + np.abs(v)) / math.sqrt(2) - 0.8 * r
    if shape == "triangle":
        normals = [(math.cos(a), math.sin(a)) for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]
        return np.max([nu * u + nv * v for nu, nv in normals], axis=0) - 0.7 * r
    raise ValueError(f"unknown shape {shape!r}")


def render_clip(spec: ClipSpec, height: int = 64, width: int = 64) -> tuple[np.ndarray, Trajectory]:
    """Render ``spec`` to ``[F, H, W, 3]`` uint8 RGB; also returns the trajectory (ground truth)."""
    traj = trajectory(spec, height, width)
    rng = np.random.default_rng(spec.seed + 1)
    pattern_rng_state = rng.bit_generator.state
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    light, dark = (np.array(c) for c in _BG_PALETTES[spec.background])
    colour = np.array(COLOURS[spec.colour])
    floor = 0.82 * height
    frames = np.empty((spec.frames, height, width, 3), dtype=np.uint8)
    for f in range(spec.frames):
        X = xs + traj.cam[f]  # scene coordinates seen by this frame's camera
        rng.bit_generator.state = pattern_rng_state  # same texture every frame
        w = _background_pattern(spec.background, X, ys, rng)[..., None]
        img = light * w + dark * (1 - w)
        img = img * (1 + 0.12 * _fine_texture(X, ys, rng))[..., None]
        img = np.where((ys >= floor)[..., None], img * 0.72, img)  # the floor
        if traj.pivot is not None:  # pendulum string
            px, py = traj.pivot[0] - traj.cam[f], traj.pivot[1]
            ox, oy = traj.x[f] - traj.cam[f], traj.y[f]
            seg = np.array([ox - px, oy - py])
            s = np.clip(((xs - px) * seg[0] + (ys - py) * seg[1]) / (seg @ seg), 0, 1)
            dist = np.hypot(xs - px - s * seg[0], ys - py - s * seg[1])
            a = np.clip(1.0 - dist, 0, 1)[..., None] * 0.8
            img = img * (1 - a) + 0.1 * a
        cx, cy, th = traj.x[f] - traj.cam[f], traj.y[f], traj.angle[f]
        du, dv = xs - cx, ys - cy
        u = du * math.cos(th) + dv * math.sin(th)  # object-local, rotated with the object
        v = -du * math.sin(th) + dv * math.cos(th)
        alpha = np.clip(0.5 - _object_sdf(spec.shape, u, v, traj.radius), 0, 1)[..., None]
        tone = np.where(v > 0, 1.0, 0.55)[..., None]  # two-tone body so rotation is visible
        img = img * (1 - alpha) + colour * tone * alpha
        frames[f] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return frames, traj


# ----------------------------------------------------------------------------------------------
# Writing a world
# ----------------------------------------------------------------------------------------------


PARALLEL_MIN_CLIPS = 64


def _write_clip(job: tuple[ClipSpec, Path, int, int, float]) -> None:
    """Render one clip and encode it to ``path`` (a worker process's task)."""
    spec, path, height, width, fps = job
    frames, _ = render_clip(spec, height, width)
    write_video(path, frames, fps)


def write_split(
    config: WorldConfig, split: str, out: Path, progress: bool = True, workers: int | None = None
) -> pd.DataFrame:
    """Render and encode one split into ``out`` (videos/ + metadata.csv); returns the table.

    Clips are independent (each spec carries its own seed), so ``workers`` processes (default: one
    per core, at most 4) render and encode them in parallel (splits of ``PARALLEL_MIN_CLIPS`` or more:
    below that, starting the processes costs more than it saves); 0 renders in this process."""
    specs = sample_specs(config, split)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rels = [f"videos/{split}_{i:05d}.mp4" for i in range(len(specs))]
    jobs = [(spec, out / rel, config.height, config.width, config.fps) for spec, rel in zip(specs, rels)]
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    bar = tqdm(total=len(jobs), desc=f"world/{split}", disable=not progress, leave=False)
    if workers > 1 and len(jobs) >= PARALLEL_MIN_CLIPS:
        with ProcessPoolExecutor(
            workers, mp_context=forkserver_context(), initializer=exit_with_parent, initargs=(os.getpid(),)
        ) as pool:
            for _ in pool.map(_write_clip, jobs, chunksize=8):
                bar.update(1)
    else:
        for job in jobs:
            _write_clip(job)
            bar.update(1)
    bar.close()
    rows = [
        {
            "video": rel,
            "prompt": spec.prompt,
            "motion": spec.motion,
            "colour": spec.colour,
            "shape": spec.shape,
            "background": spec.background,
            "camera": spec.camera,
            "direction": spec.direction,
            "frames": spec.frames,
        }
        for spec, rel in zip(specs, rels)
    ]
    table = pd.DataFrame(rows)
    with atomic_path(out / "metadata.csv") as tmp:  # a split is complete only when its metadata exists
        table.to_csv(tmp, index=False)
    return table


def generate_world(config: WorldConfig, out: str | Path, progress: bool = True) -> dict[str, Path]:
    """Write all splits under ``out`` (``out/base``, ``out/pool``, ``out/query``, ``out/eval``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(config.motions) - set(MOTIONS)
    if unknown:
        raise ValueError(f"unknown motions {sorted(unknown)}; choose from {list(MOTIONS)}")
    if config.frames < 5 or (config.frames - 1) % 4:
        raise ValueError(f"frames must be 4n+1 and at least 5, got {config.frames}")
    if config.height % 16 or config.width % 16:
        raise ValueError("height and width must be multiples of 16")
    paths = {}
    for split in SPLITS:
        write_split(config, split, out / split, progress)
        paths[split] = out / split
    (out / "world.json").write_text(json.dumps(asdict(config), indent=2))
    return paths


def world_exists(out: str | Path, config: WorldConfig) -> bool:
    """True when ``out`` holds a complete world generated with exactly ``config``."""
    out = Path(out)
    meta = out / "world.json"
    # a world.json written before a setting existed holds that setting's default
    if not meta.is_file() or {**asdict(WorldConfig()), **json.loads(meta.read_text())} != asdict(config):
        return False
    return all((out / s / "metadata.csv").is_file() for s in SPLITS)
