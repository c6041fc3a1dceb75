import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from motive.gradients import GradientConfig
from motive.store import FeaturizeOptions, Store, StoreLocked, featurize
from tests.store.helpers import cli, run_cli, same_store, tiny_model_from


def test_killed_run_resumes_bit_identical(model_dir, mini_world, tmp_path):
    """SIGKILL a featurize run part-way, check refusals and the lock, resume: same bits as a clean run."""
    pool = mini_world / "pool"
    common = ("--model", model_dir, "--data", pool, "--proj-dim", 64, "--noise-draws", 3, "--batch-size", 2)
    common += ("--no-cache", "--workers", 0, "--quiet")
    assert cli("featurize", *common, "--out", tmp_path / "clean") == 0
    killed = tmp_path / "killed"
    proc = run_cli(sys.executable, "-m", "motive", "featurize", *common, "--out", killed)
    journal = killed / "work" / "rank-00000.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read()
    assert not (killed / "meta.json").exists() and (killed / "work" / "plan.json").is_file()
    with open(journal, "a") as fh:  # a kill in the middle of a line leaves half a record
        fh.write('{"id": 9, "vid')
    with pytest.raises(FileNotFoundError, match="interrupted"):
        Store.open(killed)
    assert cli("featurize", *common, "--out", killed, "--sigma", 0.3) == 2  # other settings: refused
    with open(killed / "work" / "rank-00000.lock", "a") as held:  # another writer holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StoreLocked):
            featurize(
                tiny_model_from(model_dir),
                pool,
                killed,
                GradientConfig(proj_dim=64, noise_draws=3),
                options=FeaturizeOptions(batch_size=2),
            )
    assert cli("featurize", *common, "--out", killed) == 0
    same_store(Store.open(tmp_path / "clean"), Store.open(killed))
    assert not (killed / "work").exists()


def test_two_torchrun_ranks_equal_one_process(model_dir, mini_world, tmp_path):
    """torchrun gives each rank OMP_NUM_THREADS=1; at that same thread count one process gives the
    same bits. (A different thread count changes BLAS summation order: equal to fp32 rounding only.)"""
    args = (
        "featurize",
        "--model",
        model_dir,
        "--data",
        mini_world / "pool",
        "--proj-dim",
        64,
        "--batch-size",
        2,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the single process and the two ranks run at once (each on one thread: the bits do not depend on it)
    one_log = open(tmp_path / "one.log", "w+")  # a file, not a pipe: nothing reads it while rank 0 runs
    one = subprocess.Popen([sys.executable, "-m", "motive", *map(str, args), "--out", str(tmp_path / "one"),
                            "--workers", "0"], stdout=one_log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    torchrun = Path(sys.executable).with_name("torchrun")
    two = run_cli(
        torchrun, "--standalone", "--nproc_per_node", 2, "-m", "motive", *args, "--out", tmp_path / "two"
    )
    log = two.communicate(timeout=600)[0]
    assert two.returncode == 0, log
    with one_log:
        assert one.wait(timeout=600) == 0, one_log.seek(0) or one_log.read()
    assert log.count("2 ranks on the CPU share its") == 1  # warned once, by rank 0
    merged = Store.open(tmp_path / "two")
    assert [s["file"] for s in merged.meta["shards"]] == [
        "shard-00000-of-00002.npy",
        "shard-00001-of-00002.npy",
    ]
    assert merged.index["shard"].tolist() == [0, 0, 1, 1, 0, 0, 1, 1, 0, 0]  # chunks of 2 dealt round-robin
    same_store(Store.open(tmp_path / "one"), merged)
    assert cli(*args, "--out", tmp_path / "threads", "--quiet") == 0  # this process: other thread count
    # another thread count changes only the reduction order: up to 1.4e-6 on entries of ~0.1 on some CPUs
    # (2026-12-01); a wrong clip, noise draw or projection would differ by ~0.1
    np.testing.assert_allclose(Store.open(tmp_path / "threads").vectors, merged.vectors, atol=1e-5)


def test_separate_jobs_merge_and_info(model_dir, mini_world, tmp_path, capsys):
    store = tmp_path / "s"
    args = ("featurize", "--model", model_dir, "--data", mini_world / "query", "--out", store)
    args += ("--proj-dim", 32, "--world-size", 2, "--quiet", "--workers", 0)
    assert cli(*args, "--rank", 1) == 0  # 10 clips in one chunk of 16: rank 1's shard is empty
    assert "merge" in capsys.readouterr().out
    assert cli("store", "info", store) == 0
    assert "in progress" in capsys.readouterr().out
    assert cli("store", "merge", store) == 2
    assert "rank(s) [0] of 2 have not finished" in capsys.readouterr().err
    assert cli(*args, "--rank", 0) == 0  # the last job to finish merges
    assert "10/10 clips featurized" in capsys.readouterr().out
    assert cli("store", "info", store, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["state"] == "finished" and summary["clips"] == 10 and summary["status"] == {"ok": 10}
    assert summary["gradient"]["precision"] == "fp32" and len(summary["shards"]) == 2
    assert cli("store", "merge", store) == 0  # merging a finished store is a no-op
