"""``attribute``'s dispatch: every method's scores come from one function, in the [N, Q] form the
vote expects; the baselines equal their definitions."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motive.attribute import METHODS, AttributionConfig, attribute, method_scores
from motive.data.dataset import load_dataset
from motive.gradients import GradientConfig
from motive.inputs import dataset_inputs
from motive.scoring import cosine_scores, random_scores
from motive.store import StoreMismatch, featurize


@pytest.fixture(scope="module")
def pool_store(tiny_model, mini_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("attr") / "pool"
    return featurize(tiny_model, mini_world / "pool", out, GradientConfig(proj_dim=32), progress=False)


def test_each_method_gives_scores_of_its_definition(tiny_model, mini_world, pool_store, tmp_path):
    queries = load_dataset(mini_world / "query")
    n, q = len(pool_store.index), len(queries)
    motive, names = method_scores("motive", tiny_model, pool_store, queries, tmp_path / "q")
    assert motive.shape == (n, q) and names == [c.relpath for c in queries]
    np.testing.assert_allclose(np.diag(cosine_scores(pool_store.vectors, pool_store.vectors)), 1, rtol=1e-5)
    rand, _ = method_scores("random", tiny_model, pool_store, queries, seed=7)
    np.testing.assert_array_equal(rand, random_scores(n, 7))
    magnitude, names = method_scores("motion_magnitude", tiny_model, pool_store, queries)
    np.testing.assert_array_equal(magnitude[:, 0], pool_store.index["mean_flow"].to_numpy())
    masks, _ = method_scores("mask_similarity", tiny_model, pool_store, queries)
    pool_masks = np.stack(
        [x.mask.numpy().ravel() for x in dataset_inputs(tiny_model, list(load_dataset(mini_world / "pool")))]
    )
    query_masks = np.stack([x.mask.numpy().ravel() for x in dataset_inputs(tiny_model, list(queries))])
    np.testing.assert_allclose(masks, cosine_scores(pool_masks, query_masks), atol=1e-6)


def test_unknown_method_and_missing_query_store_are_refused(tiny_model, mini_world, pool_store):
    queries = load_dataset(mini_world / "query")
    with pytest.raises(ValueError, match="unknown method"):
        AttributionConfig(method="gradients")
    with pytest.raises(ValueError, match="query store"):
        method_scores("motive", tiny_model, pool_store, queries)
    assert set(METHODS) == {"motive", "random", "motion_magnitude", "mask_similarity"}


def test_attribute_writes_a_selection_of_the_pool(tiny_model, mini_world, pool_store, tmp_path):
    config = AttributionConfig(method="motion_magnitude", fraction=0.2)
    result = attribute(
        tiny_model, pool_store.path, mini_world / "query", tmp_path / "a", config, progress=False
    )
    assert len(result["selection"].top) == 2  # 20% of 10 clips
    for name in ("scores.parquet", "selection.csv", "bottom.csv", "ranking.csv", "attribution.json"):
        assert (tmp_path / "a" / name).is_file()


def test_mask_similarity_scores_an_unreadable_clip_as_zero_and_goes_on(tiny_model, mini_world, tmp_path):
    import shutil

    root = Path(shutil.copytree(mini_world / "query", tmp_path / "pool"))
    broken = load_dataset(root).clips[2].video
    broken.write_bytes(b"no longer a video")  # an undecodable clip in the pool and its store
    store = featurize(tiny_model, root, tmp_path / "store", GradientConfig(proj_dim=32), progress=False)
    assert store.index["status"].tolist()[2] == "error"
    with pytest.warns(UserWarning, match=f"{broken.name}: cannot decode"):
        result = attribute(
            tiny_model,
            store.path,
            mini_world / "query",
            tmp_path / "a",
            AttributionConfig(method="mask_similarity"),
        )
    assert np.all(result["scores"][2] == 0) and np.any(result["scores"][3] != 0)


def test_store_scores_equal_the_plain_cosine_and_a_query_store_is_reused(
    tiny_model, mini_world, pool_store, tmp_path
):
    from motive.scoring import unit_scores

    queries = load_dataset(mini_world / "query")
    scores, _ = method_scores("motive", tiny_model, pool_store, queries, tmp_path / "q")
    qstore = featurize(
        tiny_model, mini_world / "query", tmp_path / "q", GradientConfig.from_meta(pool_store.meta)
    )
    reference = cosine_scores(np.asarray(pool_store.vectors), np.asarray(qstore.vectors))  # float64 path
    np.testing.assert_allclose(scores, reference, atol=2e-6)
    np.testing.assert_allclose(unit_scores(pool_store.vectors, qstore.vectors, chunk=3), reference, atol=2e-6)
    # the query store itself as the queries: no model, no gradient, the same selection
    first = attribute(tiny_model, pool_store.path, mini_world / "query", tmp_path / "a", progress=False)
    again = attribute(None, pool_store.path, tmp_path / "q", tmp_path / "b", progress=False)
    np.testing.assert_array_equal(again["scores"], first["scores"])
    np.testing.assert_array_equal(again["selection"].top, first["selection"].top)
    assert not (tmp_path / "b" / "query_store").exists()


def test_a_dataset_changed_after_featurizing_is_refused(tiny_model, mini_world, pool_store, tmp_path):
    import shutil

    root = Path(shutil.copytree(mini_world / "query", tmp_path / "pool"))
    store = featurize(tiny_model, root, tmp_path / "store", GradientConfig(proj_dim=32), progress=False)
    table = pd.read_csv(root / "metadata.csv")
    table["prompt"] = table["prompt"][::-1].to_numpy()  # same count, other rows
    table.to_csv(root / "metadata.csv", index=False)
    with pytest.raises(StoreMismatch, match="changed since the store was written"):
        attribute(
            tiny_model, store.path, mini_world / "query", tmp_path / "a", AttributionConfig(method="random")
        )


@pytest.fixture(scope="module")
def query_store(tiny_model, mini_world, pool_store, tmp_path_factory):
    """The mini world's queries featurized with the pool's settings (one of them is static)."""
    out = tmp_path_factory.mktemp("attr_q") / "queries"
    config = GradientConfig.from_meta(pool_store.meta)
    return featurize(tiny_model, mini_world / "query", out, config, progress=False)


def test_store_scores_by_option_equal_the_plain_array_scores(pool_store, query_store):
    from motive.attribute import store_scores
    from motive.scoring import centred_scores, preconditioned_scores

    q = query_store.vectors  # [Q, D']
    np.testing.assert_array_equal(store_scores(pool_store, q), pool_store.scores(q))  # the default, exactly
    rows, ok = np.asarray(pool_store.vectors), pool_store.ok
    np.testing.assert_allclose(
        store_scores(pool_store, q, "centred"), centred_scores(rows, q, ok, chunk=3), atol=1e-6
    )
    np.testing.assert_allclose(
        store_scores(pool_store, q, "preconditioned", damping=0.5),
        preconditioned_scores(rows, q, 0.5, ok, chunk=3),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="applies to method 'motive' only"):
        AttributionConfig(method="random", score="centred")
    with pytest.raises(ValueError, match="unknown score"):
        AttributionConfig(score="whitened")


def test_attribute_with_a_centred_score_skips_the_static_query(pool_store, query_store, tmp_path):
    import json

    from motive.attribute import store_scores
    from motive.scoring import majority_vote

    static = query_store.index.loc[np.linalg.norm(query_store.vectors, axis=1) == 0, "video"].tolist()
    assert len(static) == 1  # the mini world's "static" query: an empty motion mask, a zero gradient
    config = AttributionConfig(score="centred", fraction=0.2, report=False)
    with pytest.warns(UserWarning, match=f"query {static[0]}: no motion"):
        result = attribute(None, pool_store.path, query_store.path, tmp_path / "a", config, progress=False)
    names = query_store.index["video"].tolist()
    kept = np.array([n not in static for n in names])
    expected = store_scores(pool_store, query_store.vectors, "centred")
    np.testing.assert_array_equal(result["scores"][:, kept], expected[:, kept])
    assert np.isnan(result["scores"][:, ~kept]).all()
    table = pd.read_parquet(tmp_path / "a" / "scores.parquet")
    assert list(table.columns) == ["video", *names] and table[static[0]].isna().all()
    vote = majority_vote(expected[:, kept], 90.0, 0.2, valid=pool_store.ok)
    np.testing.assert_array_equal(result["selection"].top, vote.top)
    summary = json.loads((tmp_path / "a" / "attribution.json").read_text())
    assert summary["config"]["score"] == "centred" and list(summary["skipped_queries"]) == static


def test_attribute_refuses_queries_that_are_all_static_or_failed(
    tiny_model, mini_world, pool_store, tmp_path
):
    import shutil

    root = Path(shutil.copytree(mini_world / "query", tmp_path / "queries"))
    table = pd.read_csv(root / "metadata.csv")
    table = table[table["motion"] == "static"].iloc[:1]
    broken = root / table["video"].iloc[0].replace(".mp4", "_broken.mp4")
    broken.write_bytes(b"not a video")
    table = pd.concat([table, table.assign(video=str(broken.relative_to(root)))])
    table.to_csv(root / "metadata.csv", index=False)
    qstore = featurize(
        tiny_model, root, tmp_path / "q", GradientConfig.from_meta(pool_store.meta), progress=False
    )
    assert qstore.index["status"].tolist() == ["ok", "error"]
    with pytest.raises(ValueError, match="every query has a zero feature"):
        attribute(None, pool_store.path, qstore.path, tmp_path / "a", AttributionConfig(report=False))


def test_an_ensemble_of_stores_averages_their_scores(tiny_model, mini_world, pool_store, tmp_path):
    import json

    seed1 = GradientConfig(proj_dim=32, noise_seed=1, proj_seed=1)
    other = featurize(tiny_model, mini_world / "pool", tmp_path / "pool1", seed1, progress=False)
    config = AttributionConfig(fraction=0.2, report=False)
    queries = mini_world / "query"
    one = attribute(tiny_model, pool_store.path, queries, tmp_path / "a", config, progress=False)
    two = attribute(tiny_model, other.path, queries, tmp_path / "b", config, progress=False)
    both = attribute(
        tiny_model, [pool_store.path, other.path], queries, tmp_path / "c", config, progress=False
    )
    assert not np.allclose(one["scores"], two["scores"], equal_nan=True)  # the seeds differ
    np.testing.assert_allclose(both["scores"], (one["scores"] + two["scores"]) / 2, rtol=1e-6, equal_nan=True)
    summary = json.loads((tmp_path / "c" / "attribution.json").read_text())
    assert summary["ensemble"] == [str(pool_store.path.resolve()), str(other.path.resolve())]
    assert summary["store"] == str(pool_store.path.resolve())  # the first stands for them
    assert (tmp_path / "c" / "query_store_1" / "meta.json").is_file()
    assert len(both["selection"].top) == 2


def test_an_ensemble_is_refused_where_it_has_no_meaning(tiny_model, mini_world, pool_store, tmp_path):
    queries = mini_world / "query"
    query_split = featurize(tiny_model, queries, tmp_path / "qs", GradientConfig(proj_dim=32), progress=False)
    pair = [pool_store.path, pool_store.path]
    with pytest.raises(ValueError, match="'motive' only"):
        attribute(
            tiny_model, pair, queries, tmp_path / "r", AttributionConfig(method="random"), progress=False
        )
    with pytest.raises(ValueError, match="dataset folder"):
        attribute(tiny_model, pair, query_split.path, tmp_path / "s", progress=False)
    with pytest.raises(StoreMismatch, match="not a store of the same clips"):
        attribute(tiny_model, [pool_store.path, query_split.path], queries, tmp_path / "t", progress=False)
    with pytest.raises(ValueError, match="no feature store"):
        attribute(tiny_model, [], queries, tmp_path / "u", progress=False)


def test_excluded_flags_stay_out_of_the_selection_and_are_listed(pool_store, query_store, tmp_path):
    import json

    from motive.attribute import store_scores
    from motive.flags import excluded_clips
    from motive.report import _flags
    from motive.scoring import majority_vote

    out_mask, reasons = excluded_clips(pool_store.index, ["no-motion", "camera-only"])
    assert out_mask.any() and not out_mask.all()  # the mini pool has still or panned clips, and others
    config = AttributionConfig(fraction=0.5, exclude=["no-motion", "camera-only"], report=False)
    with pytest.warns(UserWarning, match="no motion"):  # the static query
        result = attribute(None, pool_store.path, query_store.path, tmp_path / "a", config, progress=False)
    top = result["selection"].top
    assert not out_mask[top].any()
    kept = ~np.isnan(result["scores"]).all(axis=0)
    expected = majority_vote(
        store_scores(pool_store, query_store.vectors, "cosine")[:, kept], 90.0, 0.5, pool_store.ok & ~out_mask
    )
    np.testing.assert_array_equal(top, expected.top)
    listed = pd.read_csv(tmp_path / "a" / "excluded.csv", keep_default_na=False)
    assert listed["video"].tolist() == pool_store.index.loc[out_mask, "video"].tolist()
    assert listed["reason"].tolist() == ["; ".join(r) for r in reasons if r]
    summary = json.loads((tmp_path / "a" / "attribution.json").read_text())
    assert summary["excluded_clips"] == int(out_mask.sum())
    shown = _flags(pool_store.index, Path(pool_store.meta["data"]), tmp_path, ["no-motion"])
    assert any(f["flag"] == "no-motion (kept out of the selection)" for f in shown) == any(
        "no-motion" in r for r in reasons
    )
    with pytest.raises(ValueError, match="unknown flag"):
        AttributionConfig(exclude=["pans"])
