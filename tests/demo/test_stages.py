"""The demo's harness check and its other-motions set, on hand-made inputs (the whole demo runs in
test_cli)."""

import json
import math

import numpy as np
import pytest
import torch

from motive.demo.stages import CHECKED, cached_model
from motive.demo.stages import oracle_check as _oracle_check


def _rows(oracle: list[float], random: list[float]) -> dict[str, list[dict]]:
    """Fine-tune results with the same values for every checked metric, each turned so that the
    oracle's lower value is the better one (an accuracy is higher when better)."""
    return {
        name: [{m: sign * -x for m, sign in CHECKED.items()} for x in values]
        for name, values in (("oracle", oracle), ("random", random))
    }


def test_oracle_check_separated_by_a_clear_margin():
    check = _oracle_check(_rows([0.10, 0.11, 0.12], [0.20, 0.21, 0.22]))
    assert check["seeds"] == 3
    for metric in CHECKED:
        c = check[metric]
        assert c["separated"]
        assert math.isclose(c["oracle_advantage"], 0.10)
        assert math.isclose(
            c["margin_in_seed_stds"], 0.10 / (0.01 * math.sqrt(2 / 3))
        )  # both stds √(2/3)·0.01


def test_oracle_check_overlapping_seeds_are_not_separated():
    c = _oracle_check(_rows([0.10, 0.13, 0.16], [0.12, 0.15, 0.18]))["target_motion_loss"]
    assert not c["separated"]
    assert math.isclose(c["oracle_advantage"], 0.02)


def test_oracle_check_oracle_worse_gives_a_negative_margin():
    c = _oracle_check(_rows([0.25, 0.25, 0.25], [0.125, 0.125, 0.125]))["target_specificity"]
    assert not c["separated"]
    assert c["oracle_advantage"] < 0 and math.isnan(c["margin_in_seed_stds"])


def test_oracle_check_judges_each_metric_on_its_own():
    rows = {
        "oracle": [{"target_motion_loss": 0.5, "target_specificity": -0.2}] * 2,
        "random": [{"target_motion_loss": 0.4, "target_specificity": 0.1}] * 2,
    }
    check = _oracle_check(rows)
    assert not check["target_motion_loss"]["separated"] and check["target_specificity"]["separated"]
    assert "motion_accuracy" not in check  # runs without generated videos are not judged on them


def test_oracle_check_counts_a_higher_accuracy_as_better():
    rows = {
        "oracle": [{"motion_accuracy": a} for a in (0.8, 0.9, 1.0)],
        "random": [{"motion_accuracy": a} for a in (0.1, 0.2, 0.3)],
    }
    c = _oracle_check(rows)["motion_accuracy"]
    assert c["separated"] and math.isclose(c["oracle_advantage"], 0.7) and c["margin_in_seed_stds"] > 3


def test_cached_model_loads_once(tiny_model, tmp_path):
    path = str(tiny_model.save_pretrained(tmp_path / "m"))
    assert cached_model(path) is cached_model(path)
    assert cached_model(path).num_parameters() == tiny_model.num_parameters()


def test_a_first_frame_base_model_is_pretrained_reused_scored_and_lends_its_vae(mini_world, tmp_path):
    from dataclasses import replace

    from motive.demo.config import DemoConfig
    from motive.demo.stages import finetune_and_evaluate, make_base_model
    from motive.demo.track import fit_classifier
    from motive.models.wan import VideoModel

    config = replace(DemoConfig.quick(str(tmp_path)), tokenizer="word", condition="first-frame")
    model_dir = tmp_path / "base_model"
    logs: list[str] = []
    make_base_model(config, mini_world, model_dir, False, logs.append)
    make_base_model(config, mini_world, model_dir, False, logs.append)
    assert "reusing" in logs[-1]
    record = model_dir / "pretrain.json"  # a model saved before --vae-from existed is reused too
    summary = json.loads(record.read_text())
    del summary["config"]["vae"]["source"]
    record.write_text(json.dumps(summary))
    make_base_model(config, mini_world, model_dir, False, logs.append)
    assert "reusing" in logs[-1]
    with pytest.raises(ValueError, match="other settings \\(tiny\\)"):
        make_base_model(replace(config, tokenizer="byte"), mini_world, model_dir, False, logs.append)
    classifier = fit_classifier(mini_world, "pool")
    motion = "bounce"
    result = finetune_and_evaluate(
        str(model_dir),
        str(mini_world / "pool"),
        None,
        0,
        str(mini_world / "eval"),
        motion,
        config,
        classifier,
    )
    videos = result["videos"]
    assert videos and all("trajectory_error_px" in v for v in videos)  # scored against the true clip
    assert np.isnan(result["trajectory_error_px"]) or result["trajectory_error_px"] >= 0
    # a second base model takes this one's VAE instead of fitting its own
    taken = replace(config, vae_from=str(model_dir), seed=1)
    summary = make_base_model(taken, mini_world, tmp_path / "taken", False, logs.append)
    assert summary["vae_final_mse"] is None  # not fitted
    a, b = (VideoModel.from_pretrained(d).vae.state_dict() for d in (model_dir, tmp_path / "taken"))
    assert all(torch.equal(a[k], b[k]) for k in a)
