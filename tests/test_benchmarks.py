"""The benchmark scripts' own checks: the device run's deadline and the real-path benchmark's environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_gpu_checks_skips_the_steps_the_deadline_leaves_no_time_for(tmp_path):
    """The device run's global deadline: with 20 s in all, no step starts (each needs 30 s), and the
    summary says so for each, in order, without running Python."""
    env = {**os.environ, "OUT": str(tmp_path), "GPU_BUDGET_S": "20", "GPU_STEPS": "wan21 tests finetune"}
    out = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_checks.sh"), "--smoke"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    summary = (tmp_path / "summary.md").read_text()
    skipped = [line.split(":")[0] for line in summary.splitlines() if "skipped" in line]
    assert skipped == ["## wan21", "## tests", "## finetune"], summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]  # no step ran, no log


def test_real_path_keeps_pythonpath_and_refuses_a_folder_built_otherwise(tmp_path, monkeypatch):
    """The CLI subprocess gets src prepended to PYTHONPATH (carried packages stay importable), and a
    reused pipeline folder must have been built with the same settings."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from real_path import ROOT, child_env, pipeline
    finally:
        sys.path.remove(str(BENCHMARKS))
    monkeypatch.setenv("PYTHONPATH", "/carried/site")
    assert child_env()["PYTHONPATH"].split(os.pathsep) == [str(ROOT / "src"), "/carried/site"]
    monkeypatch.delenv("PYTHONPATH")
    assert child_env()["PYTHONPATH"] == str(ROOT / "src")
    built = {"variant": "wan2.1-t2v-1.3b", "full": False, "layers": 1, "smoke": True}
    (tmp_path / "benchmark_build.json").write_text(json.dumps(built))
    assert pipeline(tmp_path, "wan2.1-t2v-1.3b", False, 1, True, "cpu") == tmp_path  # reused, not rebuilt
    with pytest.raises(SystemExit, match="was built as"):
        pipeline(tmp_path, "wan2.1-t2v-1.3b", True, 1, False, "cuda")
