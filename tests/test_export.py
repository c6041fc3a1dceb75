"""``motive export``: a selection as DiffSynth-Studio's and finetrainers' dataset folders, linking the
clips or writing the exact frames Motive scored."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from motive.cli import main
from motive.data.dataset import load_dataset
from motive.data.standardise import read_standardised
from motive.data.video import read_video
from motive.export import ExportConfig, export_selection
from tests.conftest import real_clip_dataset


@pytest.fixture
def attributed(tmp_path, model_dir):
    """A real-clip pool, a store of it at a small format, and an attribution folder selecting 2 clips."""
    names = ["cogvideo__train_running.mp4", "mdn__stream-of-water.mp4", "imageio__newtonscradle.gif"]
    pool = real_clip_dataset(tmp_path / "pool", names, ["a train\nrushes", "water", "a cradle"])
    store = tmp_path / "store"
    fmt = ["--frames", "9", "--fps", "8", "--height", "64", "--width", "64", "--proj-dim", "16", "-q"]
    assert main(["featurize", "--model", str(model_dir), "--data", str(pool), "--out", str(store), *fmt]) == 0
    attribution = tmp_path / "attribution"
    attribution.mkdir()
    table = pd.read_csv(pool / "metadata.csv").iloc[:2]
    table.to_csv(attribution / "selection.csv", index=False)
    (attribution / "attribution.json").write_text(json.dumps({"store": str(store)}))
    return pool, attribution / "selection.csv"


def test_diffsynth_standardised_holds_the_frames_motive_scored(attributed, tmp_path, capsys):
    pool, selection = attributed
    out = tmp_path / "diffsynth"
    assert (
        main(["export", str(selection), "--format", "diffsynth", "--standardise", "--out", str(out), "-q"])
        == 0
    )
    assert "--num_frames 9 --height 64 --width 64" in capsys.readouterr().out
    table = pd.read_csv(out / "metadata.csv")
    assert list(table.columns) == ["video", "prompt"] and table["prompt"][0] == "a train rushes"
    exported = load_dataset(out)  # the folder is also a Motive dataset
    assert len(exported) == 2
    for clip in exported:
        video = read_video(clip.video)
        assert video.num_frames == 9 and (video.height, video.width) == (64, 64)
        assert video.fps == pytest.approx(8.0)
    summary = json.loads((out / "export.json").read_text())
    assert summary["standardise"] == {"fps": 8.0, "frames": 9, "height": 64, "width": 64}


def test_standardised_frames_match_motives_within_h264_error(attributed, tmp_path):
    pool, selection = attributed
    summary = export_selection(selection, tmp_path / "d", ExportConfig(standardise=True), progress=False)
    from motive.data.standardise import StandardiseTarget

    target = StandardiseTarget(**summary["standardise"])
    for i, original in enumerate(load_dataset(pool).clips[:2]):
        ours = read_standardised(original.video, target)[0].frames.astype(float)
        written = read_video(tmp_path / "d" / "videos" / f"{i:05d}.mp4").frames.astype(float)
        assert np.abs(ours - written).mean() < 5.0  # H.264 4:2:0 at crf 18: measured 3.6 at 64×64


def test_finetrainers_links_the_clips(attributed, tmp_path):
    pool, selection = attributed
    out = tmp_path / "ft"
    summary = export_selection(selection, out, ExportConfig(format="finetrainers"), progress=False)
    videos = (out / "videos.txt").read_text().splitlines()
    prompts = (out / "prompt.txt").read_text().splitlines()
    assert len(videos) == len(prompts) == 2 and prompts[0] == "a train rushes"
    assert (out / videos[0]).resolve() == (pool / "cogvideo__train_running.mp4").resolve()
    assert not (out / videos[0]).readlink().is_absolute()  # moves with the dataset
    assert "--caption_column prompt.txt --video_column videos.txt" in summary["trainer_flags"]
    assert "--video_resolution_buckets 9x64x64" in summary["trainer_flags"]  # the scored format
    assert "first 9 raw frames" in summary["note"]


def test_a_selection_without_its_store_needs_the_dataset(tmp_path, mini_world):
    table = load_dataset(mini_world / "pool").table.iloc[:1]
    table.to_csv(tmp_path / "sel.csv", index=False)
    with pytest.raises(ValueError, match="pass the dataset folder"):
        export_selection(tmp_path / "sel.csv", tmp_path / "o", progress=False)
    with pytest.raises(ValueError, match="clip format"):
        export_selection(
            tmp_path / "sel.csv", tmp_path / "o", ExportConfig(standardise=True), data=mini_world / "pool"
        )
    assert (
        export_selection(tmp_path / "sel.csv", tmp_path / "o", data=mini_world / "pool", progress=False)[
            "clips"
        ]
        == 1
    )
