"""The benchmark scripts the attribution experiment's numbers come from still run (their smoke modes)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_parameter_groups_cover_the_blocks():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from retrieval_settings import group_params
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert group_params("all", 4) is None
    assert group_params("first_half", 4) == ["blocks.0.*", "blocks.1.*"]
    assert group_params("second_half", 5) == ["blocks.2.*", "blocks.3.*", "blocks.4.*"]
    assert group_params("cross_attn", 4) == ["blocks.*.attn2.*"]
    with pytest.raises(ValueError, match="unknown parameter group"):
        group_params("mlp", 4)


def test_retrieval_settings_smoke(tmp_path):
    out = subprocess.run(
        [sys.executable, "retrieval_settings.py", "--smoke", "--threads", "1"],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("seed ")]
    assert len(lines) == 3 and "cross_attn" in lines[1] and "seed 0+1 " in lines[2], out.stdout
    assert "precision motion" in lines[0]
