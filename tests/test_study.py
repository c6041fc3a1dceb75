"""The pairwise preference study: pairing, refusals, the report's arithmetic, the server's token and
paths, and a rater in headless Chromium against `python -m motive study serve` killed mid-study."""

from __future__ import annotations

import itertools
import json
import math
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import numpy as np
import pandas as pd
import pytest

from motive.cli import main
from motive.data.video import write_video
from motive.study import (
    StudyConfig,
    create_study,
    fleiss_kappa,
    make_server,
    rater_plan,
    record_judgment,
    report_markdown,
    study_report,
    wilson_interval,
)

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> & "quotes"'
PROMPTS = [
    ("a red ball rolls left to right across a wooden table", "object"),
    (HOSTILE, "object"),
    ("the camera pans slowly over a quiet harbour at dusk", "camera"),
    ("a dancer spins twice and stops", "human"),
]
SCREENSHOT = os.environ.get("MOTIVE_STUDY_SCREENSHOT")  # set to a .png path to save the page


def _clip(width: int, height: int, speed: float, hue: int, frames: int = 16) -> np.ndarray:
    """A ball moving over a gradient: distinct per model, so a video's bytes tell the model."""
    yy, xx = np.mgrid[0:height, 0:width]
    video = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        base = np.stack([xx * 120 // width + 40, yy * 80 // height + 60, np.full_like(xx, 90 + hue)], -1)
        cx = (width * 0.15 + speed * t * width / frames) % width
        cy = height / 2 + height / 4 * math.sin(t / 3 * speed)
        ball = (xx - cx) ** 2 + (yy - cy) ** 2 < (height / 6) ** 2
        base[ball] = [230, 80 + hue, 60]
        video[t] = base.clip(0, 255)
    return video


def _folder(root: Path, prompts=PROMPTS, seeds=(0,), speed: float = 1.0, hue: int = 0, size=(64, 64)) -> Path:
    """A generated folder in `motive.generate`'s layout: videos/p{index:04d}_s{seed}.mp4 + videos.csv."""
    rows = []
    for seed in seeds:
        for index, (prompt, category) in enumerate(prompts):
            name = f"videos/p{index:04d}_s{seed}.mp4"
            write_video(root / name, _clip(*size, speed + 0.2 * index, hue + seed), 8.0)
            rows.append({"video": name, "prompt": prompt, "category": category, "seed": seed, "index": index})
    pd.DataFrame(rows).to_csv(root / "videos.csv", index=False)
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("gen")
    a = _folder(root / "base", seeds=(0, 1), speed=0.5, hue=0)
    b = _folder(root / "tuned", seeds=(0, 1), speed=2.0, hue=60)
    return a, b


# ------------------------------------------------------------------------------------------- pairing


def test_pairs_by_index_and_seed_and_reuses_the_study(folders, tmp_path):
    a, b = folders
    study = create_study(tmp_path / "s.db", a, b, names=("base", "tuned"), seed=3)
    assert len(study.pair_ids) == 8 and study.names == ("base", "tuned") and len(study.token) >= 30
    with sqlite3.connect(tmp_path / "s.db") as conn:
        rows = conn.execute("SELECT idx, seed, prompt, category, video_a, video_b FROM pairs").fetchall()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for index, seed, prompt, category, va, vb in rows:
        assert (prompt, category) == PROMPTS[index]
        assert va == str((a / f"videos/p{index:04d}_s{seed}.mp4").resolve())
        assert vb == str((b / f"videos/p{index:04d}_s{seed}.mp4").resolve())
    again = create_study(tmp_path / "s.db", a, b, names=("base", "tuned"), seed=3)
    assert again == study  # same inputs: the same study, the same token
    with pytest.raises(ValueError, match="other inputs.*seed 3 vs 4"):
        create_study(tmp_path / "s.db", a, b, names=("base", "tuned"), seed=4)
    with pytest.raises(ValueError, match="other inputs.*model names"):
        create_study(tmp_path / "s.db", a, b, seed=3)
    with pytest.raises(ValueError, match="other inputs"):
        create_study(tmp_path / "s.db", b, a, names=("base", "tuned"), seed=3)


def test_prompt_list_gives_text_and_category_by_index(folders, tmp_path):
    a, b = folders
    listed = tmp_path / "prompts.csv"
    pd.DataFrame({"prompt": [f"prompt {i}" for i in range(4)], "category": list("wxyz")}).to_csv(listed)
    create_study(tmp_path / "s.db", a, b, prompts=listed)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        rows = conn.execute("SELECT idx, prompt, category FROM pairs").fetchall()
    assert {(i, p, c) for i, p, c in rows} == {(i, f"prompt {i}", "wxyz"[i]) for i in range(4)}
    short = tmp_path / "short.txt"
    short.write_text("one\ntwo\n")
    with pytest.raises(ValueError, match="has 2 prompts; the videos need index 2"):
        create_study(tmp_path / "t.db", a, b, prompts=short)


def test_mismatched_inputs_are_refused(folders, tmp_path):
    a, _ = folders
    other = _folder(tmp_path / "other", prompts=PROMPTS[:3], seeds=(0, 1))  # prompt 3 missing
    with pytest.raises(ValueError, match=r"do not pair.*2 only in .*\(3, 0\)"):
        create_study(tmp_path / "s.db", a, other)
    renamed = shutil.copytree(a, tmp_path / "renamed")
    table = pd.read_csv(renamed / "videos.csv")
    table.loc[0, "prompt"] = "something else"
    table.to_csv(renamed / "videos.csv", index=False)
    with pytest.raises(ValueError, match="different prompt lists"):
        create_study(tmp_path / "s.db", a, renamed)
    (renamed / "videos/p0001_s1.mp4").unlink()
    with pytest.raises(FileNotFoundError, match="1 listed video"):
        create_study(tmp_path / "s.db", renamed, a)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_study(tmp_path / "s.db", a, tmp_path / "nope")
    assert not (tmp_path / "s.db").exists()  # refused before anything is written


def test_rater_plan_is_reproducible_shuffled_and_balanced():
    ids = list(range(1, 11))
    plan = rater_plan(0, "ann", ids)
    assert plan == rater_plan(0, "ann", ids)
    assert sorted(p for p, _ in plan) == ids
    assert [left for _, left in plan].count("A") == 5
    orders = {tuple(p for p, _ in rater_plan(0, r, ids)) for r in ("ann", "bob", "cy", "dee")}
    assert len(orders) > 1 and rater_plan(1, "ann", ids) != plan
    assert [left for _, left in rater_plan(0, "ann", ids[:3])].count("A") in (1, 2)


# -------------------------------------------------------------------------------------------- report


def test_wilson_interval_matches_a_hand_computation():
    # 8 of 10, z = 1.96: center (0.8 + 0.19208) / 1.38415 = 0.71674, half-width
    # 1.95996 / 1.38415 * sqrt(0.016 + 0.0096036) = 0.22658 -> (0.4902, 0.9433)
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson_interval(0, 5)  # 0 of 5: (0, z²/(n + z²)) = (0, 0.4345)
    assert lo == 0 and hi == pytest.approx(1.959964**2 / (5 + 1.959964**2), abs=1e-6)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _kappa_directly(ratings: list[list[str]]) -> float:
    """Fleiss' kappa from its definition: agreement over ordered pairs of different raters per item,
    chance agreement from the outcome shares over all ratings."""
    agree = [
        sum(x == y for x, y in itertools.permutations(item, 2)) / (len(item) * (len(item) - 1))
        for item in ratings
    ]
    everything = [r for item in ratings for r in item]
    chance = sum((everything.count(o) / len(everything)) ** 2 for o in ("A", "tie", "B"))
    return (sum(agree) / len(agree) - chance) / (1 - chance)


def test_fleiss_kappa_on_a_known_example():
    ratings = [["A", "A", "A"], ["tie"] * 3, ["A", "A", "tie"], ["A", "tie", "B"]]
    counts = [[item.count(o) for o in ("A", "tie", "B")] for item in ratings]
    assert fleiss_kappa(counts) == pytest.approx(11 / 41)  # P-bar 7/12, P-e 31/72: (11/72) / (41/72)
    assert fleiss_kappa(counts) == pytest.approx(_kappa_directly(ratings))
    uneven = [["A", "B"], ["A", "A", "A", "tie"], ["B", "B", "tie"]]
    assert fleiss_kappa([[i.count(o) for o in ("A", "tie", "B")] for i in uneven]) == pytest.approx(
        _kappa_directly(uneven)
    )
    assert fleiss_kappa([[3, 0, 0], [2, 0, 0]]) is None and fleiss_kappa([]) is None


def test_report_counts_categories_and_agreement(folders, tmp_path, capsys):
    a, b = folders
    db = tmp_path / "s.db"
    study = create_study(db, a, b, names=("base", "tuned"))
    empty = study_report(db)
    assert empty["judgments"] == 0 and empty["agreement"]["fleiss_kappa"] is None
    assert "n/a" in report_markdown(empty)
    lefts = {r: dict(rater_plan(study.seed, r, study.pair_ids)) for r in ("ann", "bob")}
    with sqlite3.connect(db) as conn:
        cats = dict(conn.execute("SELECT id, category FROM pairs"))
    wanted = {"ann": ["A", "A", "B", "tie", "A", "B", "A", "A"], "bob": ["A", "B", "B", "tie"]}
    for rater, outcomes in wanted.items():
        for pair, outcome in zip(study.pair_ids, outcomes):
            side = "tie" if outcome == "tie" else ("left" if lefts[rater][pair] == outcome else "right")
            assert record_judgment(db, study, rater, pair, side)
    assert not record_judgment(db, study, "ann", study.pair_ids[0], "right")  # the first judgment stands
    report = study_report(db)
    everything = wanted["ann"] + wanted["bob"]
    overall = report["overall"]
    assert overall["n"] == 12 and report["raters"] == 2 and report["pairs_judged"] == 8
    assert (
        [overall[k]["count"] for k in ("wins", "ties", "losses")]
        == [6, 2, 4]
        == [everything.count(o) for o in ("A", "tie", "B")]
    )
    assert overall["wins"]["pct"] == pytest.approx(50.0)
    assert overall["wins"]["ci95_pct"] == pytest.approx([100 * x for x in wilson_interval(6, 12)])
    for category, row in report["categories"].items():
        got = [o for r, outs in wanted.items() for p, o in zip(study.pair_ids, outs) if cats[p] == category]
        assert [row[k]["count"] for k in ("wins", "ties", "losses")] == [
            got.count(o) for o in ("A", "tie", "B")
        ]
    agree = report["agreement"]
    both = [[wanted["ann"][i], wanted["bob"][i]] for i in range(4)]
    assert agree["pairs"] == 4 and agree["percent_agreement"] == pytest.approx(75.0)
    assert agree["fleiss_kappa"] == pytest.approx(_kappa_directly(both))
    text = report_markdown(report)
    assert "| **overall** | 12 | 6 (50.0% [" in text and "Fleiss' kappa" in text and "| base wins |" in text
    assert main(["study", "report", "--db", str(db), "--out", str(tmp_path / "r.json")]) == 0
    assert capsys.readouterr().out == text
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(report))
    assert main(["study", "report", "--db", str(tmp_path / "none.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="not a study database"):
        study_report(tmp_path / "junk.db")


# -------------------------------------------------------------------------------------------- server


@pytest.fixture
def server(folders, tmp_path):
    a, b = folders
    db = tmp_path / "s.db"
    study = create_study(db, a, b)
    srv = make_server(db, StudyConfig(port=0))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv, study, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _get(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_requests_without_the_token_are_refused(server):
    srv, study, base = server
    for path in ("/", "/rate?rater=ann", "/video/1/left?rater=ann", "/video/1/left?rater=ann&token=wrong"):
        assert _get(base + path)[0] == 403, path
    assert _get(base + "/judge?rater=ann", data=b"pair=1&choice=left")[0] == 403
    assert _get(f"{base}/judge?rater=ann&token={study.token[:-1]}", data=b"pair=1&choice=left")[0] == 403
    assert study_report(srv.db)["judgments"] == 0
    status, page = _get(f"{base}/?token={study.token}")
    assert status == 200 and b'name="rater"' in page
    status, page = _get(f"{base}/rate?token={study.token}&rater=ann")
    assert status == 200 and b"pair 1 of 8" in page


def test_videos_are_served_by_pair_and_side_only(server, folders):
    srv, study, base = server
    token = f"token={study.token}&rater=ann"
    pair, left = rater_plan(study.seed, "ann", study.pair_ids)[0]
    with sqlite3.connect(srv.db) as conn:
        va, vb = conn.execute("SELECT video_a, video_b FROM pairs WHERE id = ?", (pair,)).fetchone()
    status, body = _get(f"{base}/video/{pair}/left?{token}")
    assert status == 200 and body == Path(va if left == "A" else vb).read_bytes()
    status, body = _get(f"{base}/video/{pair}/right?{token}", headers={"Range": "bytes=10-19"})
    assert status == 206 and body == Path(vb if left == "A" else va).read_bytes()[10:20]
    secret = Path(va).parent.parent / "videos.csv"
    for path in (
        "/video/../videos.csv",
        "/video/1/../../videos.csv",
        "/video/1/%2e%2e%2fvideos.csv",
        f"/video/{secret}",
        "/video/1/a",
        "/video/99/left",
        "/video/-1/left",
        "/video/1/left/../../../etc/passwd",
        "/videos.csv",
        "/etc/passwd",
    ):
        status, body = _get(f"{base}{path}?{token}")
        assert status == 404, path
        assert b"prompt" not in body and b"root:" not in body


# ----------------------------------------------------------------------------------- browser + kill


def _browser():
    """Playwright driving the system's Chromium (never a downloaded one), or skip with the reason."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip(
            "no Chromium on this machine (`make install` installs Debian's chromium when run as root)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is absent (pip install -e '.[dev]' installs it)")
    return chromium, sync_playwright


class _Server:
    """`python -m motive study serve` as a subprocess; its invite link read from its output."""

    def __init__(self, args: list[str]):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "motive", "study", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._link = ""

    @property
    def link(self) -> str:
        """The invite link, once the server listens (it starts in the background meanwhile)."""
        if not self._link:
            self._link = self._wait_for("invite link: ").split("invite link: ", 1)[1].strip()
        return self._link

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def _wait_for(self, text: str, timeout: float = 90) -> str:
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if text in line:
                return line
        self.proc.kill()
        raise AssertionError(f"the study server did not print {text!r}: {''.join(seen)}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]


def test_a_rater_in_chromium_survives_a_reload_and_a_killed_server(tmp_path):
    chromium, sync_playwright = _browser()
    size = (192, 128)  # big enough to look like something in the screenshot
    a = _folder(tmp_path / "base", speed=0.5, hue=0, size=size)
    b = _folder(tmp_path / "tuned", speed=2.0, hue=60, size=size)
    db = tmp_path / "study.db"
    args = [
        "--videos",
        str(a),
        str(b),
        "--db",
        str(db),
        "--port",
        "0",
        "--names",
        "base,tuned",
        "--seed",
        "7",
    ]
    server = _Server(args)
    files = {
        p.read_bytes(): model for model, folder in (("A", a), ("B", b)) for p in (folder / "videos").iterdir()
    }
    clicks = ["left", "right", "tie", "left"]
    expected: list[tuple[str, str]] = []  # (category, outcome from A's side), from what the page showed
    flags = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
    ]
    flags += ["--disable-component-update", "--disable-sync"]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--headless", *flags])
            page = browser.new_page(viewport={"width": 900, "height": 620})
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(server.link)
            page.fill("#rater", "rater one")
            page.click("#start")
            for step, click in enumerate(clicks):
                assert page.text_content("#progress").startswith(f"pair {step + 1} of 4")
                prompt = page.text_content("#prompt")
                if step == 1:  # a reload mid-way shows the same pair again
                    page.reload()
                    assert page.text_content("#progress").startswith("pair 2 of 4")
                    assert page.text_content("#prompt") == prompt
                if prompt == HOSTILE:  # shown as text: no element, no script ran
                    assert page.eval_on_selector("#prompt", "e => e.children.length") == 0
                    assert page.evaluate("() => window.__pwned === undefined")
                    assert page.eval_on_selector("#prompt", "e => e.innerHTML").startswith("&lt;script&gt;")
                category = page.text_content("#category")
                assert (prompt, category) in PROMPTS
                page.wait_for_function("() => document.querySelector('#left').readyState >= 2", timeout=15000)
                assert page.eval_on_selector("#left", "v => v.videoWidth") == size[0]
                shown = {side: page.get_attribute(f"#{side}", "src") for side in ("left", "right")}
                models = {
                    side: files[urllib.request.urlopen(urljoin(page.url, src)).read()]
                    for side, src in shown.items()
                }
                assert sorted(models.values()) == ["A", "B"]
                expected.append((category, "tie" if click == "tie" else models[click]))
                if SCREENSHOT and prompt != HOSTILE and step == 0:
                    page.wait_for_timeout(700)  # a few frames in
                    Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=SCREENSHOT, full_page=True)
                page.click(f"#choose-{click}")
                page.wait_for_load_state()
                if step == 2:  # kill the server mid-study; a new one carries on from the database
                    assert _rows(db) == 3
                    server.kill()
                    assert _rows(db) == 3
                    token = parse_qs(urlsplit(server.link).query)["token"]
                    server = _Server(args)  # the same database: the same study and token
                    assert parse_qs(urlsplit(server.link).query)["token"] == token
                    page.goto(server.link.replace("/?", "/rate?") + "&rater=rater+one")
            assert "Thank you, all done" in page.text_content("#done")
            assert not dialogs
            browser.close()
    finally:
        server.proc.kill()
        server.proc.wait(timeout=10)
    assert _rows(db) == 4
    report = study_report(db)
    outcomes = [o for _, o in expected]
    assert [report["overall"][k]["count"] for k in ("wins", "ties", "losses")] == [
        outcomes.count(o) for o in ("A", "tie", "B")
    ]
    for category, row in report["categories"].items():
        got = [o for c, o in expected if c == category]
        assert [row[k]["count"] for k in ("wins", "ties", "losses")] == [
            got.count(o) for o in ("A", "tie", "B")
        ]
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT rater, left_model, clicked, choice, created FROM judgments").fetchall()
    assert {r[0] for r in stored} == {"rater one"} and [r[2] for r in stored] == clicks
