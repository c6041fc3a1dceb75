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
