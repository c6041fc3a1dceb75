"""Ctrl-C in ``motive featurize``: one line saying what was saved, exit code 130, and the same command
resumes, saying how much it resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd


def test_ctrl_c_in_featurize_says_what_was_saved_and_the_rerun_resumes(model_dir, mini_world, tmp_path):
    pool = tmp_path / "pool"  # 12 rows (world clips, one repeated), one per chunk: the signal comes first
    pool.mkdir()
    table = pd.read_csv(mini_world / "pool" / "metadata.csv")
    table = pd.concat([table, table], ignore_index=True).iloc[:12]
    table["video"] = [str(mini_world / "pool" / v) for v in table["video"]]
    for i, v in enumerate(table["video"]):
        (pool / f"{i:03d}.mp4").symlink_to(v)
    table["video"] = [f"{i:03d}.mp4" for i in range(len(table))]
    table.to_csv(pool / "metadata.csv", index=False)
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "motive", "featurize", "--model", str(model_dir), "--data", str(pool),
           "--out", str(store), "--proj-dim", "16", "--batch-size", "1", "--workers", "1", "-q"]  # fmt: skip
    # Ctrl-C's default action, even when this suite was started in the background (a non-interactive
    # shell's `&` ignores SIGINT, children inherit that, and Python then installs no handler)
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=default_sigint
    )
    journal = store / "work" / "rank-00000.jsonl"
    deadline = time.monotonic() + 120
    while not (journal.is_file() and journal.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group, workers too
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    saved = journal.read_text().count("\n")
    assert 2 <= saved < 12
    assert lines[0] == (
        f"motive featurize: interrupted; {saved} of 12 clips saved in {store}; the same command resumes"
    )
    again = subprocess.run([*cmd[:-1]], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert f"resuming {store}: {saved} of 12 clips already saved" in again.stderr
    assert (store / "meta.json").is_file()
    index = pd.read_parquet(store / "index.parquet")
    assert len(index) == 12 and (index["status"] == "ok").all()
