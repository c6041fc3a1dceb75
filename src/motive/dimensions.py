"""VBench evaluation dimensions of generated videos, by VBench's own rules (VBench v0.1.5, ``vbench/``).

Weight-free here (``WEIGHT_FREE``), each a re-implementation of VBench's code for it:

- ``temporal_flickering``: ``vbench/temporal_flickering.py`` (``cal_score``, ``mae_seq``);
- ``dynamic_degree``: ``vbench/dynamic_degree.py`` (``DynamicDegree.get_frames``/``set_params``/
  ``get_score``/``check_move``) with any flow back-end of ``motive.motion.flow`` in RAFT's place
  (OpenCV DIS by default; a user plug-in can register RAFT itself);
- ``motion_smoothness``: ``vbench/motion_smoothness.py`` (``MotionSmoothness.motion_score``/
  ``vfi_score``) with any frame interpolator of ``register_interpolator`` in AMT's place (a
  flow-based one built in).

Every figure carries its back-end (``backends``), e.g. ``vbench-rule/flow=dis``, so a number measured
with a stand-in model is never read as VBench's own. The model-based dimensions
(``VBENCH_DIMENSIONS``) come only from the ``vbench`` package itself, when it is importable and its
weights are already on disk; nothing is ever downloaded.

Deviations from VBench, all outside the rule itself: frames come from the caller (``score_videos``
decodes with PyAV, VBench with ``cv2.VideoCapture``; the decoders can differ by a grey level), and
the stand-in flow or interpolator sees the frames unpadded (RAFT pads to multiples of 8 and AMT to
multiples of 16 with edge replication; at sizes already divisible, such as 64×64, nothing differs).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from motive.motion.flow import FlowFn, flow_backends, get_flow

WEIGHT_FREE: tuple[str, ...] = ("temporal_flickering", "motion_smoothness", "dynamic_degree")
VBENCH_DIMENSIONS: tuple[str, ...] = (
    "subject_consistency",
    "background_consistency",
    "aesthetic_quality",
    "imaging_quality",
)

InterpolateFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``fn(frame_a, frame_b)``: uint8 RGB ``[H, W, 3]`` twice → the frame halfway between them, ``[H, W, 3]``
in 0..255 (float or uint8; quantised to uint8 the way VBench's ``tensor2img`` does)."""


@dataclass
class DimensionConfig:
    """Back-ends of the VBench-rule dimensions and whether to ask the ``vbench`` package for the rest."""

    flow: str = field(
        default="dis",
        metadata={
            "help": "flow back-end standing in for RAFT in dynamic degree (dis, farneback, or a plug-in's)"
        },
    )
    flow_preset: str = field(default="medium", metadata={"help": "preset of a built-in flow back-end"})
    interpolator: str = field(
        default="flow-dis",
        metadata={
            "help": "frame interpolator standing in for AMT in motion smoothness (flow-<flow back-end>, "
            "or a plug-in's, e.g. amt)"
        },
    )
    use_vbench: bool = field(
        default=False,
        metadata={
            "help": "also compute subject/background consistency, aesthetic and imaging quality with the "
            "vbench package (needs it installed and its weights already in --vbench-weights)"
        },
    )
    vbench_weights: str = field(
        default="",
        metadata={"help": "VBench's weight folder (default: $VBENCH_CACHE_DIR or ~/.cache/vbench)"},
    )
    vbench_device: str = field(default="cuda", metadata={"help": "device of the vbench package's models"})


# -- temporal flickering ------------------------------------------------------------------------------


def temporal_flickering(frames: np.ndarray) -> float:
    """VBench ``cal_score``: (255 − mean over consecutive pairs of the mean absolute difference) / 255,
    over every frame. 1.0 for a still clip; NaN with fewer than two frames (VBench: mean of nothing).
    VBench scores this only on videos of static prompts (its ``static_filter``); that is the caller's
    choice of videos."""
    if len(frames) < 2:
        return float("nan")
    f = frames.astype(np.float32)  # [F, H, W, 3]
    # VBench's calculate_mae: np.mean(cv2.absdiff(float32, float32)) per pair, then np.mean
    maes = np.array([np.mean(cv2.absdiff(a, b)) for a, b in zip(f[:-1], f[1:])])  # [F-1]
    return (255.0 - float(np.mean(maes))) / 255.0


# -- dynamic degree -----------------------------------------------------------------------------------


def sample_interval(fps: float) -> int:
    """VBench ``DynamicDegree.get_frames``: every ``max(1, round(fps / 8))``-th frame (about 8 fps)."""
    return max(1, round(fps / 8))


def dynamic_thresholds(height: int, width: int, frames: int) -> tuple[float, int]:
    """VBench ``DynamicDegree.set_params``: (flow threshold 6·min(H, W)/256 px, count_num
    round(4·n/16)) for ``frames`` = n sampled frames (frames, not pairs; Python's round)."""
    return 6.0 * min(height, width) / 256.0, round(4 * (frames / 16.0))


def top_flow(flow: np.ndarray) -> float:
    """VBench ``DynamicDegree.get_score``: mean of the largest 5% (``int(h·w·0.05)``) flow magnitudes
    of one pair's flow ``[H, W, 2]``."""
    rad = np.sqrt(np.square(flow[..., 0]) + np.square(flow[..., 1])).ravel()  # [H·W]
    cut = int(rad.size * 0.05)
    return float(np.mean(np.abs(np.sort(-rad))[:cut]))


def dynamic_pair_scores(frames: np.ndarray, fps: float, flow: FlowFn) -> np.ndarray:
    """``top_flow`` of each consecutive pair of the frames VBench samples from ``frames``
    ``[F, H, W, 3]`` → ``[n − 1]``."""
    sampled = frames[:: sample_interval(fps)]  # [n, H, W, 3]
    return np.array([top_flow(flow(a, b)) for a, b in zip(sampled[:-1], sampled[1:])], dtype=np.float64)


def is_dynamic(scores: np.ndarray, height: int, width: int, frames: int) -> bool:
    """VBench ``DynamicDegree.check_move``: dynamic when at least count_num pair scores exceed the
    threshold (``frames``: the number of sampled frames)."""
    thres, count_num = dynamic_thresholds(height, width, frames)
    count = 0
    for score in scores:
        if score > thres:
            count += 1
        if count >= count_num:
            return True
    return False


def video_is_dynamic(frames: np.ndarray, fps: float, flow: FlowFn) -> bool:
    """VBench ``DynamicDegree.infer`` for one video ``[F, H, W, 3]`` with ``flow`` in RAFT's place."""
    scores = dynamic_pair_scores(frames, fps, flow)
    n = len(frames[:: sample_interval(fps)])
    return is_dynamic(scores, frames.shape[1], frames.shape[2], n)


def dynamic_degree_flags(
    videos: np.ndarray, fps: float, flow: str = "dis", preset: str = "medium"
) -> list[bool]:
    """``video_is_dynamic`` for each video of ``videos`` ``[B, F, H, W, 3]``; the dimension is their
    mean (VBench ``dynamic_degree``)."""
    fn = get_flow(flow, preset)
    return [video_is_dynamic(v, fps, fn) for v in videos]


# -- motion smoothness --------------------------------------------------------------------------------

_INTERPOLATORS: dict[str, InterpolateFn] = {}


def register_interpolator(name: str, fn: InterpolateFn) -> None:
    """Make ``fn`` (see ``InterpolateFn``) available as ``DimensionConfig(interpolator=name)``; e.g. a
    plug-in that loads AMT-S from a local checkpoint registers ``"amt"``."""
    if name.startswith("flow-"):
        raise ValueError(f"{name!r}: names 'flow-<back-end>' are the built-in flow interpolators")
    _INTERPOLATORS[name] = fn


def interpolators() -> list[str]:
    """Names usable as ``DimensionConfig.interpolator``."""
    return sorted([*_INTERPOLATORS, *(f"flow-{f}" for f in flow_backends())])


def warp(frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: output pixel x takes ``frame`` at x + ``flow``(x) (bilinear, edges replicated)."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        frame, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


FLOW_SIDE = 128  # the interpolator's flow runs on frames enlarged to at least this short side


def _upscaled_flow(flow: FlowFn, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``flow(a, b)`` ``[H, W, 2]`` measured on frames enlarged (bicubic, integer factor) to a short side
    of at least ``FLOW_SIDE``: DIS's pyramid is too shallow at 64×64 to follow a few pixels of motion
    (a 6 px shift of a textured square at 64×64 measured as 2.9 px, 5.9 px after 2× enlargement)."""
    h, w = a.shape[:2]
    s = max(1, -(-FLOW_SIDE // min(h, w)))
    if s == 1:
        return flow(a, b)
    big = [cv2.resize(x, (w * s, h * s), interpolation=cv2.INTER_CUBIC) for x in (a, b)]
    return cv2.resize(flow(*big), (w, h), interpolation=cv2.INTER_AREA) / s


def _from_middle(f: np.ndarray, iters: int = 5) -> np.ndarray:
    """The flow from the middle frame back to an end frame, given that end frame's flow ``f`` ``[H, W, 2]``
    to the other end: the g with g(x) = −½·f(x + g(x)), by fixed-point iteration from −½·f."""
    g = -0.5 * f
    for _ in range(iters):
        g = -0.5 * warp(f, g)
    return g


def flow_interpolator(flow: FlowFn) -> InterpolateFn:
    """Halfway frame from ``flow`` both ways (a weight-free stand-in for AMT): each end frame is
    backward-warped to the middle along its flow (inverted by ``_from_middle``) and the two are
    averaged. Flow is measured on enlarged frames (``_upscaled_flow``)."""

    def interpolate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        f01, f10 = _upscaled_flow(flow, a, b), _upscaled_flow(flow, b, a)  # [H, W, 2] each
        from_a = warp(a.astype(np.float32), _from_middle(f01))  # [H, W, 3]
        from_b = warp(b.astype(np.float32), _from_middle(f10))
        return 0.5 * from_a + 0.5 * from_b  # [H, W, 3] float32

    return interpolate


def get_interpolator(name: str, preset: str = "medium") -> InterpolateFn:
    """The interpolator ``name``: a registered one, or ``flow-<flow back-end>``."""
    if name in _INTERPOLATORS:
        return _INTERPOLATORS[name]
    if name.startswith("flow-") and name[5:] in flow_backends():
        return flow_interpolator(get_flow(name[5:], preset))
    raise ValueError(
        f"unknown interpolator {name!r}; known: {interpolators()} (register others with register_interpolator)"
    )


def motion_smoothness(frames: np.ndarray, interpolate: InterpolateFn) -> float:
    """VBench ``MotionSmoothness.motion_score``: interpolate between consecutive even frames (0, 2, 4,
    ...), quantise like ``tensor2img`` (clip, truncate to uint8), and score
    (255 − mean over odd frames of the mean absolute difference to the real odd frame) / 255
    (``vfi_score``). 1.0 when every odd frame is predicted exactly; NaN below 3 frames (VBench asserts)."""
    evens = frames[0::2]  # [ceil(F/2), H, W, 3]
    if len(evens) < 2:
        return float("nan")
    predicted = [
        np.clip(np.asarray(interpolate(a, b), np.float32), 0, 255).astype(np.uint8)  # tensor2img
        for a, b in zip(evens[:-1], evens[1:])
    ]  # the interpolated (odd) frames, one per even pair
    odd = frames[1::2]
    diffs = [np.mean(cv2.absdiff(o, p)) for o, p in zip(odd, predicted)]  # VBench get_diff on uint8
    return (255.0 - float(np.mean(diffs))) / 255.0


# -- one video, a table of videos ---------------------------------------------------------------------


def backends(config: DimensionConfig) -> dict[str, str]:
    """The back-end of each weight-free dimension's figure."""
    return {
        "temporal_flickering": "vbench-rule",
        "motion_smoothness": f"vbench-rule/interpolator={config.interpolator}",
        "dynamic_degree": f"vbench-rule/flow={config.flow}",
    }


def score_video(frames: np.ndarray, fps: float, config: DimensionConfig) -> dict[str, float]:
    """The weight-free dimensions of one video ``[F, H, W, 3]`` uint8 at ``fps``; ``dynamic_degree`` is
    VBench's per-video 0/1."""
    flow = get_flow(config.flow, config.flow_preset)
    return {
        "temporal_flickering": temporal_flickering(frames),
        "motion_smoothness": motion_smoothness(
            frames, get_interpolator(config.interpolator, config.flow_preset)
        ),
        "dynamic_degree": float(video_is_dynamic(frames, fps, flow)),
    }


def score_videos(
    table: pd.DataFrame, config: DimensionConfig, progress: bool = True
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every dimension of every video of ``table`` (a ``video`` column of paths, as from
    ``motive.generate.read_videos``) → (the table plus one column per dimension, {dimension: back-end}).
    A model-based dimension the ``vbench`` package cannot give is left out, its back-end entry saying
    why (``unavailable: ...``)."""
    from motive.data.video import read_video

    # resolve the back-ends before the first video, so a bad name fails at once
    get_flow(config.flow, config.flow_preset)
    get_interpolator(config.interpolator, config.flow_preset)
    rows = []
    for path in tqdm(table["video"], desc="dimensions", unit="video", disable=not progress):
        video = read_video(path)
        rows.append(score_video(video.frames, video.fps, config))
    out = pd.concat([table.reset_index(drop=True), pd.DataFrame(rows, columns=list(WEIGHT_FREE))], axis=1)
    found = backends(config)
    if config.use_vbench:
        values, notes = vbench_scores(list(out["video"]), config)
        for dim, per_video in values.items():
            out[dim] = per_video
        found.update(notes)
    return out, found


def summarise(scores: pd.DataFrame, found: dict[str, str]) -> dict[str, dict]:
    """{dimension: {"value": mean over videos, "backend": ...}} (unavailable ones: value None)."""
    return {
        dim: {"value": float(scores[dim].mean()) if dim in scores else None, "backend": backend}
        for dim, backend in found.items()
    }


# -- the vbench package's model-based dimensions --------------------------------------------------------


def vbench_cache(config: DimensionConfig) -> Path:
    """VBench's weight folder: ``config.vbench_weights``, else $VBENCH_CACHE_DIR, else ~/.cache/vbench."""
    return Path(
        config.vbench_weights or os.environ.get("VBENCH_CACHE_DIR") or Path.home() / ".cache" / "vbench"
    )


def vbench_weight_files(cache: Path) -> dict[str, list[Path]]:
    """The files each model-based dimension needs in VBench's local mode (``init_submodules(local=True)``
    would download a missing one; we refuse instead)."""
    return {
        "subject_consistency": [
            cache / "dino_model" / "facebookresearch_dino_main",
            cache / "dino_model" / "dino_vitbase16_pretrain.pth",
        ],
        "background_consistency": [cache / "clip_model" / "ViT-B-32.pt"],
        "aesthetic_quality": [
            cache / "clip_model" / "ViT-L-14.pt",
            cache / "aesthetic_model" / "emb_reader" / "sa_0_4_vit_l_14_linear.pth",
        ],
        "imaging_quality": [cache / "pyiqa_model" / "musiq_spaq_ckpt-358bb6af.pth"],
    }


def vbench_availability(config: DimensionConfig) -> dict[str, str]:
    """Per model-based dimension: "" when the vbench package can compute it here, else the reason."""
    if importlib.util.find_spec("vbench") is None:
        return dict.fromkeys(VBENCH_DIMENSIONS, "unavailable: the vbench package is not installed")
    out = {}
    for dim, files in vbench_weight_files(vbench_cache(config)).items():
        missing = [str(f) for f in files if not f.exists()]
        out[dim] = f"unavailable: weights missing ({', '.join(missing)})" if missing else ""
    return out


def vbench_scores(
    videos: list[str], config: DimensionConfig
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Per-video scores of the model-based dimensions from the vbench package itself (its
    ``VBench.evaluate`` in ``custom_input`` mode, local weights) → ({dimension: [score per video]},
    {dimension: back-end or reason}). Only dimensions whose weights are all present are run."""
    notes = vbench_availability(config)
    ready = [d for d, why in notes.items() if not why]
    found = {d: why for d, why in notes.items() if why}
    if not ready:
        return {}, found
    import json
    import tempfile

    os.environ["VBENCH_CACHE_DIR"] = str(vbench_cache(config))  # read by vbench.utils at import
    try:
        from vbench import VBench  # type: ignore[import-not-found]
    except Exception as e:  # its package import needs torchvision, decord, clip, ...
        return {}, {**found, **dict.fromkeys(ready, f"unavailable: importing vbench failed ({e})")}

    values: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        folder.mkdir()
        for i, path in enumerate(videos):  # one folder of links: VBench's custom input is a folder
            (folder / f"{i:06d}{Path(path).suffix}").symlink_to(Path(path).resolve())
        info = Path(importlib.util.find_spec("vbench").origin).parent / "VBench_full_info.json"
        bench = VBench(config.vbench_device, str(info), str(Path(tmp) / "out"))
        bench.evaluate(str(folder), "motive", dimension_list=ready, local=True, mode="custom_input")
        results = json.loads((Path(tmp) / "out" / "motive_eval_results.json").read_text())
        for dim in ready:
            per = {Path(r["video_path"]).stem: float(r["video_results"]) for r in results[dim][1]}
            values[dim] = [per.get(f"{i:06d}", float("nan")) for i in range(len(videos))]
            found[dim] = "vbench"
    return values, found
