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
