"""The attribution report: written for any dataset, safe with hostile prompts, and shown by a real
browser (headless Chromium) without console errors."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from motive.attribute import AttributionConfig, attribute
from motive.gradients import GradientConfig
from motive.report import ReportConfig, write_report
from motive.store import featurize

HOSTILE = "<script>alert(1)</script>\"' & <b>bold</b>"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium on this machine (`make install` installs Debian's chromium when run as root)")


@pytest.fixture(scope="module")
def attribution(tiny_model, mini_world, tmp_path_factory):
    """An attribution of a pool whose first prompt is hostile markup."""
    tmp = tmp_path_factory.mktemp("report")
    pool = Path(shutil.copytree(mini_world / "pool", tmp / "pool"))
    table = pd.read_csv(pool / "metadata.csv")
    table.loc[:, "prompt"] = HOSTILE  # every clip: the hostile prompt is shown wherever a clip is
    table.to_csv(pool / "metadata.csv", index=False)
    store = featurize(tiny_model, pool, tmp / "store", GradientConfig(proj_dim=32), progress=False)
    attribute(
        tiny_model,
        store.path,
        mini_world / "query",
        tmp / "attr",
        AttributionConfig(fraction=0.2),
        progress=False,
    )
    return tmp / "attr"


def test_the_report_shows_queries_clips_plots_and_flags(attribution):
    page = (attribution / "report" / "index.html").read_text()
    summary = json.loads((attribution / "attribution.json").read_text())
    assert summary["config"]["report"] is True
    assert page.count("Query: ") == 10 and "Highest scores for this query" in page
    for name in ("votes.png", "scores.png", "contribution.png"):
        assert f"assets/{name}" in page and (attribution / "report" / "assets" / name).stat().st_size > 1000
    thumbs = re.findall(r'src="(assets/thumbs/[0-9a-f]+\.gif)"', page)
    assert len(set(thumbs)) >= 10 and all((attribution / "report" / t).is_file() for t in thumbs)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "σ = 0.751" in page and "Flagged clips" in page
    before = {p: p.stat().st_mtime_ns for p in (attribution / "report" / "assets" / "thumbs").iterdir()}
    write_report(attribution, ReportConfig(top_k=2))  # thumbnails are reused, not made again
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_chromium_renders_the_report_without_errors(attribution, tmp_path):
    chromium = _chromium()
    page = (attribution / "report" / "index.html").resolve()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2400"]
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [chromium, *flags, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 20_000, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert "Query: " in dom.stdout and dom.stdout.count("<img") >= 20
    assert HOSTILE.split('"')[0].replace("<", "&lt;").replace(">", "&gt;") in dom.stdout  # shown as text
    assert "<script>alert(1)" not in dom.stdout and "<b>bold</b>" not in dom.stdout
