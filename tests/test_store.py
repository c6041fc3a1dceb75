import json

import numpy as np
import pandas as pd
import pytest

from motive.cli import main
from motive.data.dataset import load_dataset
from motive.gradients import GradientConfig
from motive.store import Store, StoreMismatch, check_compatible, featurize


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
    for name in ("meta.json", "vectors.npy", "index.parquet"):
        assert (tmp_path / "s" / name).is_file()
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
    assert meta["latent_shape"] == [16, 5, 16, 16] and meta["standardise"]["frames"] == 17
    assert GradientConfig.from_meta(meta) == GradientConfig(proj_dim=64).for_model(tiny_model)
    again = featurize(
        tiny_model, mini_world / "pool", tmp_path / "s2", GradientConfig(proj_dim=64), progress=False
    )
    np.testing.assert_allclose(
        again.vectors, store.vectors, atol=1e-6
    )  # cached inputs give the same features


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


def test_mismatched_settings_are_refused(tiny_model, mini_world, tmp_path):
    a = featurize(
        tiny_model, mini_world / "query", tmp_path / "a", GradientConfig(proj_dim=32), progress=False
    )
    b = featurize(
        tiny_model,
        mini_world / "query",
        tmp_path / "b",
        GradientConfig(proj_dim=32, sigma=0.3, use_mask=False),
        progress=False,
    )
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
    assert (
        _cli("featurize", "--model", model_dir, "--data", pool, "--out", store, "--proj-dim", 64, "--quiet")
        == 0
    )
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
