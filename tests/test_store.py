import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motive.cli import main
from motive.data.dataset import load_dataset
from motive.gradients import GradientConfig
from motive.projection import TABLES
from motive.store import Store, StoreLocked, StoreMismatch, check_compatible, featurize


@pytest.fixture(scope="module")
def model_dir(tiny_model, tmp_path_factory):
    return tiny_model.save_pretrained(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MOTIVE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_store_layout_and_self_consistency(tiny_model, mini_world, tmp_path):
    store = featurize(
        tiny_model, mini_world / "pool", tmp_path / "s", GradientConfig(proj_dim=64), progress=False
    )
    for name in ("meta.json", "shard-00000-of-00001.npy", "index.parquet"):
        assert (tmp_path / "s" / name).is_file()
    assert not (tmp_path / "s" / "work").exists()  # the journal is gone once the store is final
    assert store.vectors.shape == (10, 64)
    np.testing.assert_allclose(np.linalg.norm(store.vectors, axis=1), 1.0, rtol=1e-5)
    assert set(store.index.columns) >= {
        "id",
        "video",
        "prompt",
        "frames",
        "mean_flow",
        "grad_norm",
        "status",
        "error",
    }
    assert (store.index["status"] == "ok").all()
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["gradient"]["sigma"] == 0.751 and meta["projection"]["d_out"] == 64
    assert meta["projection"]["tables"] == TABLES  # how the randomness is drawn: part of the identity
    assert meta["latent_shape"] == [16, 5, 16, 16] and meta["standardise"]["frames"] == 17
    assert GradientConfig.from_meta(meta) == GradientConfig(proj_dim=64).for_model(tiny_model)
    again = featurize(  # cached inputs, randomness regenerated per block: the same features
        tiny_model,
        mini_world / "pool",
        tmp_path / "s2",
        GradientConfig(proj_dim=64),
        progress=False,
        keep_tables=False,
    )
    np.testing.assert_allclose(again.vectors, store.vectors, atol=1e-6)


def test_bad_clip_is_recorded_not_fatal(tiny_model, mini_world, tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    table = pd.read_csv(mini_world / "pool" / "metadata.csv").head(2)
    (root / "videos").mkdir()
    (root / "videos" / "a.mp4").write_bytes((mini_world / "pool" / table["video"][0]).read_bytes())
    (root / "videos" / "b.mp4").write_bytes(b"not a video at all" * 10)
    table["video"] = ["videos/a.mp4", "videos/b.mp4"]
    table.to_csv(root / "metadata.csv", index=False)
    store = featurize(tiny_model, root, tmp_path / "s", GradientConfig(proj_dim=32), progress=False)
    assert store.index["status"].tolist() == ["ok", "error"]
    assert "cannot decode" in store.index["error"][1]
    assert np.all(store.vectors[1] == 0)


def _two_stores(model, data, tmp_path, other: GradientConfig) -> tuple[Store, Store]:
    """Stores of ``data`` with the default settings (D' = 32) and with ``other``."""
    a = featurize(model, data, tmp_path / "a", GradientConfig(proj_dim=32), progress=False)
    return a, featurize(model, data, tmp_path / "b", other, progress=False)


def test_mismatched_settings_are_refused(tiny_model, mini_world, tmp_path):
    other = GradientConfig(proj_dim=32, sigma=0.3, use_mask=False)
    a, b = _two_stores(tiny_model, mini_world / "query", tmp_path, other)
    with pytest.raises(StoreMismatch, match="gradient"):
        check_compatible(a.meta, b.meta)
    check_compatible(a.meta, Store.open(tmp_path / "a").meta)


def _cli(*args) -> int:
    """Run ``motive ARGS...`` in-process; paths may be given as Path objects."""
    return main([str(a) for a in args])


def _attribute(model_dir, store, queries, out, *extra) -> int:
    return _cli(
        "attribute",
        "--model",
        model_dir,
        "--store",
        store,
        "--queries",
        queries,
        "--out",
        out,
        "--quiet",
        *extra,
    )


def test_cli_pipeline_end_to_end(model_dir, mini_world, tmp_path, capsys):
    store, res, tuned = tmp_path / "store", tmp_path / "res", tmp_path / "tuned"
    pool, queries = mini_world / "pool", mini_world / "query"
    featurize = ("featurize", "--model", model_dir, "--data", pool, "--out", store, "--proj-dim", 64)
    assert _cli(*featurize, "--regenerate-projection", "--quiet") == 0
    assert _attribute(model_dir, store, queries, res, "--fraction", 0.3) == 0
    scores = pd.read_parquet(res / "scores.parquet")
    assert scores.shape == (10, 11)  # video column + one per query
    selection = pd.read_csv(res / "selection.csv")
    assert len(selection) == 3 and {"score", "votes", "rank"} <= set(selection.columns)
    assert list(selection["rank"]) == [1, 2, 3]
    assert (res / "bottom.csv").is_file()
    # selection.csv is itself a valid dataset table for the pool folder
    assert len(load_dataset(pool, table_path=res / "selection.csv")) == 3
    finetune = ("finetune", "--model", model_dir, "--data", pool, "--selection", res / "selection.csv")
    assert _cli(*finetune, "--out", tuned, "--steps", 2, "--quiet") == 0
    assert (tuned / "model_index.json").is_file()
    assert json.loads((tuned / "finetune.json").read_text())["clips"] == 3
    capsys.readouterr()
    evaluate = ("evaluate", "--model", model_dir, tuned, "--data", mini_world / "eval")
    assert _cli(*evaluate, "--prompts", 2, "--steps", 2) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {str(model_dir), str(tuned)}
    assert all(r["target_motion_loss"] > 0 and 0 <= r["dynamic_degree"] <= 1 for r in results.values())
    assert _cli(*evaluate, "--motions", "bounce", "--prompts", 1, "--steps", 2) == 0
    results = json.loads(capsys.readouterr().out)  # the other motions' clips give the specificity
    assert results[str(model_dir)]["target_specificity"] == 0.0  # the first model is the base
    tuned_result = results[str(tuned)]
    assert tuned_result["other_motion_loss"] > 0 and tuned_result["target_specificity"] != 0.0
    for method in ("random", "motion_magnitude", "mask_similarity"):
        assert _attribute(model_dir, store, queries, tmp_path / method, "--method", method) == 0
        assert len(pd.read_csv(tmp_path / method / "selection.csv")) == 1


def test_query_with_another_model_is_refused(model_dir, mini_world, tmp_path, capsys):
    from motive.models.tiny import build_tiny_model

    other = build_tiny_model(seed=9).save_pretrained(tmp_path / "other")
    store, queries = tmp_path / "store", mini_world / "query"
    assert (
        _cli(
            "featurize", "--model", model_dir, "--data", queries, "--out", store, "--proj-dim", 32, "--quiet"
        )
        == 0
    )
    assert _attribute(other, store, queries, tmp_path / "r") == 2
    assert "was built with model" in capsys.readouterr().err


def _run(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw
    )


def _same_store(a: Store, b: Store) -> None:
    """Bit-identical vectors and the same index (apart from which shard holds a clip)."""
    assert np.array_equal(a.vectors, b.vectors)
    cols = [c for c in a.index.columns if c not in ("shard", "row")]
    pd.testing.assert_frame_equal(a.index[cols], b.index[cols])


def test_existing_store_is_reused_or_refused(tiny_model, mini_world, tmp_path):
    cfg = GradientConfig(proj_dim=32)
    first = featurize(tiny_model, mini_world / "query", tmp_path / "s", cfg, progress=False)
    stamp = (tmp_path / "s" / "meta.json").stat().st_mtime_ns
    again = featurize(tiny_model, mini_world / "query", tmp_path / "s", cfg, progress=False)
    assert (tmp_path / "s" / "meta.json").stat().st_mtime_ns == stamp  # reused, not recomputed
    _same_store(first, again)
    with pytest.raises(StoreMismatch, match="sigma"):
        featurize(tiny_model, mini_world / "query", tmp_path / "s", GradientConfig(proj_dim=32, sigma=0.3))
    with pytest.raises(StoreMismatch, match="dataset"):
        featurize(tiny_model, mini_world / "eval", tmp_path / "s", cfg, progress=False)
    other = featurize(
        tiny_model,
        mini_world / "query",
        tmp_path / "s",
        GradientConfig(proj_dim=32, sigma=0.3),
        overwrite=True,
    )
    assert other.meta["gradient"]["sigma"] == 0.3 and not np.array_equal(other.vectors, first.vectors)


def test_killed_run_resumes_bit_identical(model_dir, mini_world, tmp_path):
    """SIGKILL a featurize run part-way, check refusals and the lock, resume: same bits as a clean run."""
    pool = mini_world / "pool"
    common = ("--model", model_dir, "--data", pool, "--proj-dim", 64, "--noise-draws", 3, "--batch-size", 2)
    common += ("--no-cache", "--workers", 0, "--quiet")
    assert _cli("featurize", *common, "--out", tmp_path / "clean") == 0
    killed = tmp_path / "killed"
    proc = _run(sys.executable, "-m", "motive", "featurize", *common, "--out", killed)
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
    assert _cli("featurize", *common, "--out", killed, "--sigma", 0.3) == 2  # other settings: refused
    with open(killed / "work" / "rank-00000.lock", "a") as held:  # another writer holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StoreLocked):
            featurize(
                tiny_model_from(model_dir),
                pool,
                killed,
                GradientConfig(proj_dim=64, noise_draws=3),
                batch_size=2,
            )
    assert _cli("featurize", *common, "--out", killed) == 0
    _same_store(Store.open(tmp_path / "clean"), Store.open(killed))
    assert not (killed / "work").exists()


def tiny_model_from(path):
    from motive.models.wan import VideoModel

    return VideoModel.from_pretrained(path)


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
    one = _run(sys.executable, "-m", "motive", *args, "--out", tmp_path / "one", "--workers", 0, env=env)
    assert one.wait(timeout=600) == 0, one.stdout.read()
    torchrun = Path(sys.executable).with_name("torchrun")
    two = _run(
        torchrun, "--standalone", "--nproc_per_node", 2, "-m", "motive", *args, "--out", tmp_path / "two"
    )
    assert two.wait(timeout=600) == 0, two.stdout.read()
    merged = Store.open(tmp_path / "two")
    assert [s["file"] for s in merged.meta["shards"]] == [
        "shard-00000-of-00002.npy",
        "shard-00001-of-00002.npy",
    ]
    assert merged.index["shard"].tolist() == [0, 0, 1, 1, 0, 0, 1, 1, 0, 0]  # chunks of 2 dealt round-robin
    _same_store(Store.open(tmp_path / "one"), merged)
    assert _cli(*args, "--out", tmp_path / "threads", "--quiet") == 0  # this process: other thread count
    np.testing.assert_allclose(Store.open(tmp_path / "threads").vectors, merged.vectors, atol=1e-6)


def test_separate_jobs_merge_and_info(model_dir, mini_world, tmp_path, capsys):
    store = tmp_path / "s"
    args = ("featurize", "--model", model_dir, "--data", mini_world / "query", "--out", store)
    args += ("--proj-dim", 32, "--world-size", 2, "--quiet", "--workers", 0)
    assert _cli(*args, "--rank", 1) == 0  # 10 clips in one chunk of 16: rank 1's shard is empty
    assert "merge" in capsys.readouterr().out
    assert _cli("store", "info", store) == 0
    assert "in progress" in capsys.readouterr().out
    assert _cli("store", "merge", store) == 2
    assert "rank(s) [0] of 2 have not finished" in capsys.readouterr().err
    assert _cli(*args, "--rank", 0) == 0  # the last job to finish merges
    assert "10/10 clips featurized" in capsys.readouterr().out
    assert _cli("store", "info", store, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["state"] == "finished" and summary["clips"] == 10 and summary["status"] == {"ok": 10}
    assert summary["gradient"]["precision"] == "fp32" and len(summary["shards"]) == 2
    assert _cli("store", "merge", store) == 0  # merging a finished store is a no-op


def test_camera_compensation_and_cuts_reach_the_store(tiny_model, mini_world, tmp_path):
    from motive.motion.mask import MaskConfig

    other = GradientConfig(proj_dim=32, mask=MaskConfig(camera_compensation=True))
    plain, comp = _two_stores(tiny_model, mini_world / "pool", tmp_path, other)
    assert comp.meta["gradient"]["mask"]["camera_compensation"] is True
    with pytest.raises(StoreMismatch, match="camera_compensation"):
        check_compatible(plain.meta, comp.meta)
    a, b = plain.index, comp.index
    np.testing.assert_allclose(a["residual_mean_flow"], a["mean_flow"], atol=1e-4)  # off (stats: 4 decimals)
    np.testing.assert_allclose(b["mean_flow"], a["mean_flow"], rtol=1e-6)  # raw flow is the same
    assert (b["residual_mean_flow"] <= b["mean_flow"] * 1.01).all()
    assert a["camera_only"].dtype == bool and (a["cuts"] == "[]").all()  # synthetic clips have no cuts
