"""``motive queries`` with the tiny model: clips, metadata, contact sheets; same seed, same clips;
``keep`` screens clips out of the dataset."""

import numpy as np
import pandas as pd
import pytest

from motive.cli import main
from motive.data.dataset import load_dataset
from motive.data.video import read_video
from motive.queries import QueriesConfig, generate_queries


def test_generated_queries_are_a_screenable_reproducible_dataset(model_dir, tmp_path):
    pd.DataFrame(
        {"prompt": ["a red ball bouncing on a floor", "a blue cube sliding"], "motion": ["bounce", "slide"]}
    ).to_csv(tmp_path / "prompts.csv", index=False)
    args = [
        "queries",
        "--model",
        str(model_dir),
        "--prompts",
        str(tmp_path / "prompts.csv"),
        "--per-prompt",
        "2",
    ]
    args += ["--steps", "2", "--guidance", "2.0", "--negative-prompt", "still", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    table = pd.read_csv(tmp_path / "a" / "metadata.csv")
    assert (
        list(table.columns[:2]) == ["video", "prompt"]
        and table["motion"].tolist() == ["bounce"] * 2 + ["slide"] * 2
    )
    assert table["seed"].tolist() == [0, 1, 2, 3] and (table["keep"] == 1).all()
    assert len(list((tmp_path / "a" / "sheets").glob("*.png"))) == 4
    assert len(load_dataset(tmp_path / "a", decode=True)) == 4
    assert main([*args, "--out", str(tmp_path / "b")]) == 0  # same seed: the same clips
    # (up to H.264's own run-to-run noise, a few levels on a few pixels; other seeds differ far more)
    a, b = ([read_video(tmp_path / d / v).frames.astype(float) for v in table["video"]] for d in "ab")
    same = max(np.abs(x - y).mean() for x, y in zip(a, b))
    other = min(np.abs(a[i] - a[j]).mean() for i, j in [(0, 1), (2, 3)])
    assert same < 0.5 and other > 10 * same, (same, other)
    table.loc[1, "keep"] = 0  # screened out by the user: gone from the dataset, and kept so on a rerun
    table.to_csv(tmp_path / "a" / "metadata.csv", index=False)
    assert [c.relpath for c in load_dataset(tmp_path / "a")] == [
        "queries/0000.mp4",
        "queries/0002.mp4",
        "queries/0003.mp4",
    ]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert pd.read_csv(tmp_path / "a" / "metadata.csv")["keep"].tolist() == [1, 0, 1, 1]
    assert (
        main([*args[:-1], "--seed", "9", "--out", str(tmp_path / "a"), "--quiet"]) == 2
    )  # other settings refused


def test_bad_prompts_files_are_refused(tmp_path, tiny_model):
    (tmp_path / "p.csv").write_text("text\nhello\n")
    with pytest.raises(ValueError, match="'prompt' column"):
        generate_queries(tiny_model, QueriesConfig(prompts=str(tmp_path / "p.csv")), tmp_path / "q")
    with pytest.raises(ValueError, match="at least 1"):
        QueriesConfig(prompts="x", per_prompt=0)


def test_first_frame_queries_start_at_their_rows_clips(mini_world, tmp_path):
    from motive.models.tiny import TinyConfig, build_tiny_model

    model = build_tiny_model(TinyConfig(condition="first-frame", frames=5), seed=0)
    meta = pd.read_csv(mini_world / "eval" / "metadata.csv").head(2)  # a dataset's rows as prompts
    meta["video"] = [str(mini_world / "eval" / v) for v in meta["video"]]  # absolute: from anywhere
    prompts = tmp_path / "prompts.csv"
    meta.to_csv(prompts, index=False)
    config = QueriesConfig(prompts=str(prompts), per_prompt=1, steps=2, first_frame=True)
    table = generate_queries(model, config, tmp_path / "q", progress=False)
    assert table["first_frame"].tolist() == meta["video"].tolist()  # where each query started
    assert table["video"].tolist() == ["queries/0000.mp4", "queries/0001.mp4"]
    meta.drop(columns="video").to_csv(prompts, index=False)
    with pytest.raises(ValueError, match="needs a 'video' column"):
        generate_queries(model, config, tmp_path / "r", progress=False)
