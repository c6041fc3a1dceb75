"""Generation from a prompt list: per-video seeds, resume, refusal of a mixed folder, prompt files."""

from __future__ import annotations

import numpy as np
import pytest

from motive.data.video import read_video
from motive.generate import GenerateConfig, Prompt, generate_videos, read_prompts, read_videos


def test_prompt_files(tmp_path):
    (tmp_path / "p.txt").write_text("a ball rolls\n\n  a camera pans  \n")
    assert read_prompts(tmp_path / "p.txt") == [Prompt("a ball rolls"), Prompt("a camera pans")]
    (tmp_path / "p.csv").write_text('prompt,category\n"a ball, red, rolls",roll\nzoom in,camera\n')
    assert read_prompts(tmp_path / "p.csv") == [
        Prompt("a ball, red, rolls", "roll"),
        Prompt("zoom in", "camera"),
    ]
    (tmp_path / "bad.csv").write_text("text\nx\n")
    with pytest.raises(ValueError, match="'prompt' column"):
        read_prompts(tmp_path / "bad.csv")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="no prompts"):
        read_prompts(tmp_path / "empty.txt")


def test_generate_pairs_resume_and_refusal(tiny_model, tmp_path):
    prompts = [Prompt("a ball rolls", "roll"), Prompt("a ball bounces", "bounce"), Prompt("still", "none")]
    config = GenerateConfig(per_prompt=2, seed=5, steps=2, batch=4)
    table = generate_videos(tiny_model, prompts, tmp_path / "a", config, progress=False)
    assert len(table) == 6 and sorted(set(table["seed"])) == [5, 6]
    assert set(table["category"]) == {"roll", "bounce", "none"}
    # each video depends on its prompt and seed only, not on the batch it was sampled in
    single = generate_videos(
        tiny_model, prompts, tmp_path / "b", GenerateConfig(**{**config.__dict__, "batch": 1}), progress=False
    )
    for va, vb in zip(table["video"], single["video"]):
        a, b = read_video(va).frames.astype(int), read_video(vb).frames.astype(int)
        assert np.abs(a - b).mean() < 2.0  # H.264 may round differently, the content is the same
    # resume: only the missing video is sampled again
    first = tmp_path / "a" / "videos" / "p0001_s6.mp4"
    kept = tmp_path / "a" / "videos" / "p0000_s5.mp4"
    stamp = kept.stat().st_mtime_ns
    first.unlink()
    generate_videos(tiny_model, prompts, tmp_path / "a", config, progress=False)
    assert first.is_file() and kept.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="another model, prompt list or sampling settings"):
        generate_videos(tiny_model, prompts, tmp_path / "a", GenerateConfig(steps=3), progress=False)
    # a bare folder of videos reads back with empty prompts
    bare = read_videos(tmp_path / "a" / "videos")
    assert len(bare) == 6 and set(bare["prompt"]) == {""}


def test_first_frame_videos_start_at_their_clips_first_frame(mini_world, tmp_path):
    import json

    from motive.data.standardise import StandardiseTarget, read_standardised
    from motive.generate import first_frames
    from motive.models.tiny import TinyConfig, build_tiny_model

    model = build_tiny_model(TinyConfig(condition="first-frame", frames=5), seed=0)
    prompts = read_prompts(mini_world / "eval" / "metadata.csv")[:2]  # a dataset is a prompt list
    assert all(p.video.endswith(".mp4") and (mini_world / "eval").as_posix() in p.video for p in prompts)
    config = GenerateConfig(steps=2, first_frame=True)
    frames = first_frames(model, [p.video for p in prompts])  # [2, 64, 64, 3]
    s = model.settings
    whole = [read_standardised(p.video, StandardiseTarget(s.fps, 5, s.height, s.width))[0] for p in prompts]
    np.testing.assert_array_equal(frames, np.stack([w.frames[0] for w in whole]))  # frame 0 as scored
    table = generate_videos(model, prompts, tmp_path / "g", config, progress=False)
    assert len(table) == 2 and read_video(table["video"][0]).frames.shape == (5, 64, 64, 3)
    record = json.loads((tmp_path / "g" / "generation.json").read_text())
    assert record["config"]["first_frame"] and record["prompts"][0]["video"] == prompts[0].video
    with pytest.raises(ValueError, match="have no clip"):
        generate_videos(model, [Prompt("a ball")], tmp_path / "h", config, progress=False)
    with pytest.raises(ValueError, match="give the first frames"):  # a first-frame model needs them
        generate_videos(model, prompts, tmp_path / "i", GenerateConfig(steps=2), progress=False)
