import numpy as np
import pytest

from motive.gradients import GradientConfig
from motive.store import FeaturizeOptions, Store, StoreMismatch, check_compatible, featurize
from tests.store.helpers import same_store, two_stores


def test_mismatched_settings_are_refused(tiny_model, mini_world, tmp_path):
    other = GradientConfig(proj_dim=32, sigma=0.3, use_mask=False)
    a, b = two_stores(tiny_model, mini_world / "query", tmp_path, other)
    with pytest.raises(StoreMismatch, match="gradient"):
        check_compatible(a.meta, b.meta)
    check_compatible(a.meta, Store.open(tmp_path / "a").meta)


def test_existing_store_is_reused_or_refused(tiny_model, mini_world, tmp_path):
    cfg = GradientConfig(proj_dim=32)
    first = featurize(tiny_model, mini_world / "query", tmp_path / "s", cfg, progress=False)
    stamp = (tmp_path / "s" / "meta.json").stat().st_mtime_ns
    again = featurize(tiny_model, mini_world / "query", tmp_path / "s", cfg, progress=False)
    assert (tmp_path / "s" / "meta.json").stat().st_mtime_ns == stamp  # reused, not recomputed
    same_store(first, again)
    with pytest.raises(StoreMismatch, match="sigma"):
        featurize(tiny_model, mini_world / "query", tmp_path / "s", GradientConfig(proj_dim=32, sigma=0.3))
    with pytest.raises(StoreMismatch, match="dataset"):
        featurize(tiny_model, mini_world / "eval", tmp_path / "s", cfg, progress=False)
    other = featurize(
        tiny_model,
        mini_world / "query",
        tmp_path / "s",
        GradientConfig(proj_dim=32, sigma=0.3),
        options=FeaturizeOptions(overwrite=True),
    )
    assert other.meta["gradient"]["sigma"] == 0.3 and not np.array_equal(other.vectors, first.vectors)
