import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motive.gradients import GradientConfig
from motive.projection import TABLES
from motive.store import FeaturizeOptions, StoreMismatch, check_compatible, featurize
from tests.store.helpers import two_stores


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
        options=FeaturizeOptions(keep_tables=False),
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


def test_camera_compensation_and_cuts_reach_the_store(tiny_model, mini_world, tmp_path):
    from motive.motion.mask import MaskConfig

    other = GradientConfig(proj_dim=32, mask=MaskConfig(camera_compensation=True))
    plain, comp = two_stores(tiny_model, mini_world / "pool", tmp_path, other)
    assert comp.meta["gradient"]["mask"]["camera_compensation"] is True
    with pytest.raises(StoreMismatch, match="camera_compensation"):
        check_compatible(plain.meta, comp.meta)
    a, b = plain.index, comp.index
    np.testing.assert_allclose(a["residual_mean_flow"], a["mean_flow"], atol=1e-4)  # off (stats: 4 decimals)
    np.testing.assert_allclose(b["mean_flow"], a["mean_flow"], rtol=1e-6)  # raw flow is the same
    assert (b["residual_mean_flow"] <= b["mean_flow"] * 1.01).all()
    assert a["camera_only"].dtype == bool and (a["cuts"] == "[]").all()  # synthetic clips have no cuts


def test_a_playlist_in_the_dataset_is_an_error_row_and_nothing_outside_is_read(
    tiny_model, mini_world, tmp_path
):
    import shutil

    from motive.data.video import write_video
    from tests.audit import OpenAudit

    outside = tmp_path / "outside"
    outside.mkdir()
    write_video(outside / "secret.ts", np.zeros((17, 64, 64, 3), np.uint8), 8.0)
    root = Path(shutil.copytree(mini_world / "query", tmp_path / "ds"))
    (root / "evil.m3u8").write_text("#EXTM3U\n#EXTINF:10,\n../outside/secret.ts\n#EXT-X-ENDLIST\n")
    table = pd.read_csv(root / "metadata.csv")
    table.loc[len(table)] = {**table.iloc[0].to_dict(), "video": "evil.m3u8"}
    table.to_csv(root / "metadata.csv", index=False)
    audit = OpenAudit(outside)
    try:
        store = featurize(tiny_model, root, tmp_path / "s", GradientConfig(proj_dim=32), progress=False)
        assert audit.opened() == []
    finally:
        audit.close()
    row = store.index.iloc[-1]
    assert row["status"] == "error" and "HLS playlist" in row["error"] and store.ok[:-1].all()


def test_killing_featurize_leaves_no_worker_fork_server_or_tracker(model_dir, mini_world, tmp_path):
    """kill -9 of a featurize run with data-loading workers: its whole process tree ends with it."""
    import subprocess
    import sys
    import time

    from tests.audit import descendants, survivors_of_kill

    args = ["featurize", "--model", model_dir, "--data", mini_world / "pool", "--out", tmp_path / "s"]
    args += ["--workers", "1", "--batch-size", "1", "--no-cache", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "motive", *map(str, args)], stdout=subprocess.DEVNULL)
    tree: set[int] = set()
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(tree) < 3:  # tracker, fork server, worker
        tree |= descendants(proc.pid)
        time.sleep(0.05)
    assert len(tree) >= 3, f"the run ended or never started its workers: {tree}"
    left = survivors_of_kill(proc, tree)
    assert not left, f"still running after the main process was killed: {left}"


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")
def test_bf16_weights_are_recorded_and_attribute_loads_the_model_the_same_way(
    model_dir, mini_world, tmp_path
):
    from motive.store import Store
    from tests.store.helpers import attribute_cli, cli

    store = tmp_path / "s"
    args = ("featurize", "--model", model_dir, "--data", mini_world / "query", "--out", store)
    assert cli(*args, "--proj-dim", 32, "--quiet", "--workers", 0, "--weights", "bf16") == 0
    meta = Store.open(store).meta
    assert meta["gradient"]["weights"] == "bf16" and meta["gradient"]["precision"] == "bf16"
    s = Store.open(store)
    still = (s.index["mask_mean"] == 0).to_numpy()  # a query held still has no motion to differentiate
    np.testing.assert_allclose(np.linalg.norm(s.vectors, axis=1), np.where(still, 0, 1), atol=1e-5)
    # the queries are featurized with the store's settings by a model loaded as the store's was
    # (a model in fp32 has another fingerprint and would be refused)
    assert attribute_cli(model_dir, store, mini_world / "query", tmp_path / "a") == 0
