"""The whole demo, as a user runs it (``python -m motive demo --quick``): every stage, every output."""

import json
import subprocess
import sys

import pytest

from motive.data.dataset import load_dataset
from motive.demo.config import DemoConfig
from motive.demo.stages import CHECKED, held_out_clips, make_base_model, make_world


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
        "mask_similarity",
    }
    assert results["finetune"]["oracle"]["target_fraction"] == 1.0
    config = DemoConfig.quick(str(out))
    _, prompts, _ = held_out_clips(load_dataset(out / "world" / "eval"), "bounce", config)
    assert prompts  # the quick world has held-out bounce clips to generate from
    check = results["finetune_check"]["bounce"]
    assert check["seeds"] == 2
    assert "trajectory_error_px" not in check  # a text-to-video model's videos have no true continuation
    for metric, sign in CHECKED.items():
        if metric == "trajectory_error_px":
            continue
        gap = sign * (results["finetune"]["oracle"][metric] - results["finetune"]["random"][metric])
        assert check[metric]["oracle_advantage"] == pytest.approx(gap)
    for r in results["finetune"].values():  # generated videos, tracked and their motion named
        n = r["generated_videos"]
        assert n == r["seeds"] * len(prompts) and 0 <= r["motion_accuracy"] <= 1 and 0 <= r["survival"] <= 1
        lo, hi = r["motion_accuracy_interval"]
        assert lo <= r["motion_accuracy"] <= hi and sum(r["named_motions"].values()) == n
    assert len(list((out / "generated" / "bounce").glob("*.gif"))) == 7 * min(2, len(prompts))
    assert "Generated videos with their tracks" in (out / "report.html").read_text()
    base = results["finetune"]["base"]
    assert base["target_specificity"] == 0.0 and base["other_motion_loss"] > 0
    for dim in ("dynamic_degree", "temporal_flickering", "motion_smoothness"):
        assert 0 <= base[dim] <= 1
    assert base["dimension_backends"]["dynamic_degree"] == "vbench-rule/flow=dis"
    assert "vbench-rule/interpolator=flow-dis" in (out / "report.html").read_text()
    assert "Harness check" in (out / "report.html").read_text()
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "attribution" / "motive" / "selection.csv").is_file()
    said: list[str] = []  # a rerun reuses the world and the model (their stages, not a whole rerun)
    make_world(config, out / "world", False, said.append)
    make_base_model(config, out / "world", out / "base_model", False, said.append)
    assert said == [
        f"[demo] world: reusing {out / 'world'}",
        f"[demo] pretrain: reusing {out / 'base_model'}",
    ]
