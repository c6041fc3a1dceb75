"""Comparison of models: bootstrap CIs over prompts, the paired difference, and the whole command
on the tiny model (generated videos, table, plot and side-by-side page)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from motive.cli import main
from motive.compare import bootstrap_ci


def test_bootstrap_resamples_whole_prompts():
    # one prompt's videos all 1, another's all 0: resampling prompts gives means of 0, 1/2 or 1 only
    values = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    groups = np.array([0, 0, 0, 1, 1, 1])
    mean, lo, hi = bootstrap_ci(values, groups, resamples=4000, seed=0)
    assert mean == 0.5 and lo == 0.0 and hi == 1.0
    # constant values: a zero-width interval; NaN values are left out
    assert bootstrap_ci(np.array([2.0, 2.0, np.nan]), np.array([0, 1, 2]), 100, 0) == (2.0, 2.0, 2.0)
    assert all(np.isnan(bootstrap_ci(np.array([np.nan]), np.array([0]), 10, 0)))
    # many prompts: the interval shrinks like 1/sqrt(prompts)
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    m, lo, hi = bootstrap_ci(x, np.arange(400), 2000, 0)
    assert lo < m < hi and abs((hi - lo) / 2 - 1.96 * x.std() / 20) < 0.03


def test_compare_two_models_writes_table_plot_and_page(model_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(
        "prompt,category\na red ball bounces,bounce\na blue square rolls,roll\n<b>x</b>,none\n"
    )
    out = tmp_path / "cmp"
    common = ["--prompts", str(prompts), "--per-prompt", "2", "--steps", "2", "--bootstrap", "200", "-q"]
    # the same model twice: identical videos (same prompts and seeds; H.264 written without x264's
    # macroblock tree, whose output depended on uninitialised memory), so every difference is exactly 0
    assert main(["compare", str(model_dir), str(model_dir), "--out", str(out), *common]) == 0
    result = json.loads((out / "comparison.json").read_text())
    names = list(result["summary"])
    assert names == ["tiny", "tiny-2"] and len(result["dimensions"]) >= 3
    for dim in result["dimensions"]:
        assert result["backends"][dim].startswith("vbench-rule")
        assert result["summary"]["tiny"][dim]["videos"] == 6
        diff = result["summary"]["tiny-2"][dim]["diff"]
        assert diff == {"mean": 0.0, "lo": 0.0, "hi": 0.0, "pairs": 6}
    assert (out / "comparison.png").stat().st_size > 1000
    assert "| dynamic_degree (vbench-rule/flow=dis) |" in capsys.readouterr().out
    html = (out / "index.html").read_text()
    sources = re.findall(r'<video src="([^"]+)"', html)
    assert len(sources) == 6 and all((out / s).is_file() for s in sources)  # 3 prompts × 2 models
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html  # prompts are text
    # a folder of generated videos is scored as it is, without a model (evaluate --videos)
    capsys.readouterr()
    folder = out / "videos" / "tiny"
    assert (
        main(
            [
                "evaluate",
                "--videos",
                str(folder),
                "--video-out",
                str(tmp_path / "ev"),
                "--bootstrap",
                "50",
                "--out",
                str(tmp_path / "ev.json"),
                "-q",
            ]
        )
        == 0
    )
    alone = json.loads((tmp_path / "ev.json").read_text())["videos"]["tiny"]
    for d in result["dimensions"]:
        assert alone[d]["mean"] == result["summary"]["tiny"][d]["mean"]
        assert alone[d]["backend"] == result["backends"][d]


def test_compare_needs_prompts_for_a_model(model_dir, tmp_path, capsys):
    assert main(["compare", str(model_dir), "--out", str(tmp_path / "x"), "-q"]) == 2
    assert "needs --prompts" in capsys.readouterr().err
    assert main(["evaluate", "-q"]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["prompt\n", "text\nx\n"])
def test_generate_refuses_a_bad_prompt_list(model_dir, tmp_path, capsys, bad):
    path = tmp_path / "p.csv"
    path.write_text(bad)
    assert (
        main(["generate", "--model", str(model_dir), "--prompts", str(path), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "prompt" in capsys.readouterr().err
