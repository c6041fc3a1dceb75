"""The experiment scripts the attribution experiment's numbers come from still run (their smoke modes).

Not part of ``make test`` (they take about three minutes and test one-off studies, not the package):
``make test-experiments`` runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
pytestmark = pytest.mark.experiments


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory) -> dict[str, str]:
    """The environment of the smoke runs: one mini run folder, made by the first and reused by the rest."""
    return os.environ | {"MOTIVE_SMOKE_RUN": str(tmp_path_factory.mktemp("smoke") / "run")}


def test_parameter_groups_cover_the_blocks():
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        from retrieval_settings import group_params
    finally:
        sys.path.remove(str(EXPERIMENTS))
    assert group_params("all", 4) is None
    assert group_params("first_half", 4) == ["blocks.0.*", "blocks.1.*"]
    assert group_params("second_half", 5) == ["blocks.2.*", "blocks.3.*", "blocks.4.*"]
    assert group_params("cross_attn", 4) == ["blocks.*.attn2.*"]
    with pytest.raises(ValueError, match="unknown parameter group"):
        group_params("mlp", 4)


def test_retrieval_settings_smoke(tmp_path, smoke_env):
    out = subprocess.run(
        [sys.executable, "retrieval_settings.py", "--smoke", "--threads", "1", "--out", str(tmp_path)],
        cwd=EXPERIMENTS,
        capture_output=True,
        text=True,
        timeout=600,
        env=smoke_env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("seed ")]
    assert len(lines) == 4 and "cross_attn" in lines[1] and "seed 0+1 " in lines[2], out.stdout
    assert "precision motion" in lines[0] and "without camera-only clips" in lines[0]
    assert "camera compensated" in lines[3] and "camera compensated" not in lines[0]


def _smoke(script: str, env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, script, "--smoke", "--threads", "1", *args],
        cwd=EXPERIMENTS,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_base_model_smoke_trains_and_measures(tmp_path, smoke_env):
    stdout = _smoke(
        "base_model.py", smoke_env, "--out", str(tmp_path), "--text-len", "96", "--sigma-range", "0.5,1"
    )
    rows = [json.loads(line) for line in (tmp_path / "checkpoints.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and "step 4: motion words" in stdout
    assert {"motion_word_ratio", "motion_word_ratio_sigma1", "motive_motion_precision"} <= set(rows[-1])
    assert json.loads((tmp_path / "step4" / "motive.json").read_text())["text_len"] == 96


def test_base_model_smoke_where(tmp_path, smoke_env):
    _smoke("base_model.py", smoke_env, "--out", str(tmp_path), "--where")
    rows = json.loads((tmp_path / "where.json").read_text())
    assert set(rows["ideal_sigma1"]) == {"motion", "motion, where-blind", "motion+background"}
    (model,) = (v for k, v in rows.items() if k != "ideal_sigma1")
    assert set(model) == {"eval", "pool", "base", "text_probe"}
    assert 0.0 <= model["text_probe"]["motion"] <= 1.0 and "colour" in model["text_probe"]


def test_base_model_smoke_joint_text(tmp_path, smoke_env):
    stdout = _smoke("base_model.py", smoke_env, "--out", str(tmp_path), "--joint-text")
    rows = [json.loads(line) for line in (tmp_path / "joint_text.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and "step 4: at σ = 1" in stdout
    assert set(rows[0]["per_sigma"]) == {"1.0"} and len(rows[1]["per_sigma"]) == 5  # every σ at the end
    assert (tmp_path / "step4" / "text_encoder").is_dir()  # the trained encoder is saved with the model


def test_text_pathway_smoke_trains_each_pathway_and_checks_its_words():
    """Also the motion-word check of ``base_model.py --word-check`` (the same ``word_check``)."""
    stdout = _smoke("text_pathway.py", os.environ, "--patch", "1,2,2")
    lines = [line for line in stdout.splitlines() if "wrong/true" in line]
    assert [line.split()[0] for line in lines] == "encoder encoder3 oracle oracle1 codes embed".split()
    assert all("patch 1×2×2" in line for line in lines)  # a fresh transformer with finer tokens


def test_vae_objects_smoke_tracks_the_object_through_the_vae(smoke_env):
    stdout = _smoke("vae_objects.py", smoke_env)
    result = json.loads((Path(smoke_env["MOTIVE_SMOKE_RUN"]) / "base_model" / "vae_objects.json").read_text())
    assert result["true_survival"] == 1.0  # the tracker finds the object in every true frame
    assert 0.0 <= result["survival"] <= 1.0 and result["object_mse"] > 0 and result["frame_mse"] > 0
    assert set(result["per_motion"]) and "object found in" in stdout
    assert len(result["survival_by_frame"]) == len(result["frame_mse_by_frame"]) == 17  # the clip's frames
    for r in result["per_colour"].values():  # the true RGB is the world's colour, found in every clip
        assert r["clips"] >= 1 and len(r["true_rgb"]) == len(r["reconstructed_rgb"]) == 3
        assert 0.0 <= r["survival"] <= 1.0
    assert sum(r["clips"] for r in result["per_colour"].values()) == result["clips"]
