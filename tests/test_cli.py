import json
import subprocess
import sys

import pytest

from motive.cli import build_parser, main
from motive.demo import CHECKED

SUBCOMMANDS = [
    "world",
    "pretrain",
    "featurize",
    "store",
    "attribute",
    "finetune",
    "evaluate",
    "demo",
    "motion",
]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in text


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"motive {name}" in capsys.readouterr().out


def test_parser_knows_all_subcommands():
    actions = [a for a in build_parser()._subparsers._group_actions if a.dest == "command"]
    assert sorted(actions[0].choices) == sorted(SUBCOMMANDS)


def test_bad_dataset_gives_clear_error(tmp_path, capsys):
    code = main(["pretrain", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m"), "--quiet"])
    assert code == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_demo_quick_end_to_end(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "motive", "demo", "--quick", "--quiet", "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert (out / "world" / "pool" / "metadata.csv").is_file()
    assert (out / "base_model" / "model_index.json").is_file()
    assert results["pretrain"]["motion_word_sensitivity"]["clips"] == 10
    for method in ("motive", "no_motion_mask", "mask_similarity", "motion_magnitude", "random"):
        r = results["retrieval"][method]
        assert 0 <= r["motion_precision"] <= 1 and 0 <= r["colour_precision"] <= 1
    assert results["retrieval"]["motive"]["seeds"] == 2
    assert results["config"]["sigma"] == 0.3  # the demo's σ; the paper's σ is measured alongside
    assert results["retrieval"]["motive_paper_sigma"]["seeds"] == 1
    assert -1 <= results["projection_spearman"] <= 1
    assert set(results["finetune"]) == {
        "base",
        "oracle",
        "motive",
        "no_motion_mask",
        "random",
        "motion_magnitude",
    }
    assert results["finetune"]["oracle"]["target_fraction"] == 1.0
    check = results["finetune_check"]["bounce"]
    assert check["seeds"] == 2
    for metric in CHECKED:
        gap = results["finetune"]["random"][metric] - results["finetune"]["oracle"][metric]
        assert check[metric]["random_minus_oracle"] == pytest.approx(gap)
    base = results["finetune"]["base"]
    assert base["target_specificity"] == 0.0 and base["other_motion_loss"] > 0
    assert "Harness check" in (out / "report.html").read_text()
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "attribution" / "motive" / "selection.csv").is_file()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # reuses world and model
    assert again.returncode == 0 and "reusing" in again.stdout


def test_motion_end_to_end(tmp_path, capsys):
    import numpy as np

    from motive.data.video import write_video

    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 48, 3), dtype=np.uint8)
    clip = write_video(tmp_path / "clip.mkv", frames[:1].repeat(9, 0), 8.0)  # a still clip, lossless
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"junk")
    out = tmp_path / "out"
    args = ["motion", str(clip), str(bad), "--out", str(out), "--workers", "1", "--quiet"]
    code = main([*args, "--camera-compensation", "--save-flow", "--latent-stride", "16", "--mode", "anchor"])
    assert code == 0
    text = capsys.readouterr().out
    assert "1/2 clips" in text and "failed:" in text and "bad.mp4" in text
    stats = json.loads((out / "clip" / "stats.json").read_text())
    assert stats["settings"]["camera_compensation"] and stats["settings"]["mode"] == "anchor"
    assert stats["raw_mean_flow"] == 0.0 and not stats["camera_only"]  # a still clip
    assert np.load(out / "clip" / "mask.npy").shape == (3, 2, 3)
    assert np.load(out / "clip" / "flow.npy").shape == (8, 32, 48, 2)
