import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motive.gradients import GradientConfig
from motive.store import FeaturizeOptions, Store, StoreError, StoreMismatch, check_compatible, featurize
from motive.store.format import file_sha256, meta_checksum
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


def _store_copy(tiny_model, mini_world, tmp_path_factory, name: str):
    """A fresh copy of one finished store of the query split, to damage."""
    import shutil

    src = tmp_path_factory.getbasetemp() / "intact_store"
    if not (src / "meta.json").is_file():
        featurize(tiny_model, mini_world / "query", src, GradientConfig(proj_dim=32), progress=False)
    return Path(shutil.copytree(src, tmp_path_factory.mktemp(name) / "s"))


def _edit_meta(path, change) -> None:
    meta = json.loads((path / "meta.json").read_text())
    change(meta)
    (path / "meta.json").write_text(json.dumps(meta, indent=2))


def test_a_changed_or_corrupted_store_is_refused_naming_the_file(tiny_model, mini_world, tmp_path_factory):
    Store.open(_store_copy(tiny_model, mini_world, tmp_path_factory, "intact"))  # the copy itself is fine

    s = _store_copy(tiny_model, mini_world, tmp_path_factory, "flipped")
    shard = s / "shard-00000-of-00001.npy"
    data = bytearray(shard.read_bytes())
    data[-7] ^= 0x10  # one bit of one vector
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"shard-00000-of-00001\.npy: contents do not match"):
        Store.open(s)

    s = _store_copy(tiny_model, mini_world, tmp_path_factory, "sigma")
    _edit_meta(s, lambda m: m["gradient"].update(sigma=0.3))  # would be scored at the wrong σ
    with pytest.raises(StoreError, match="meta.json: checksum mismatch"):
        Store.open(s)

    s = _store_copy(tiny_model, mini_world, tmp_path_factory, "escape")
    outside = s.parent / "elsewhere.npy"
    np.save(outside, np.zeros((10, 32), np.float32))

    def escape(meta):
        meta["shards"][0]["file"] = "../elsewhere.npy"
        meta["checksum"] = meta_checksum(meta)  # even a consistent meta may not point outside

    _edit_meta(s, escape)
    with pytest.raises(StoreError, match="not a shard file of this store"):
        Store.open(s)

    s = _store_copy(tiny_model, mini_world, tmp_path_factory, "rows")
    index = pd.read_parquet(s / "index.parquet")
    index.loc[3, "row"] = 99  # past the shard's 10 vectors
    index.to_parquet(s / "index.parquet", index=False)

    def reseal(meta):
        meta["index_sha256"] = file_sha256(s / "index.parquet")
        meta["checksum"] = meta_checksum(meta)

    _edit_meta(s, reseal)
    with pytest.raises(StoreError, match="point outside its 10 vectors"):
        Store.open(s)
    with pytest.raises(StoreError, match="index.parquet: contents do not match"):  # without the reseal
        _edit_meta(s, lambda m: m.update(index_sha256="0" * 64, checksum=None))
        _edit_meta(s, lambda m: m.update(checksum=meta_checksum(m)))
        Store.open(s)


def test_the_cli_reports_a_corrupted_store_in_one_line(tiny_model, mini_world, tmp_path_factory, capsys):
    from motive.cli import main

    s = _store_copy(tiny_model, mini_world, tmp_path_factory, "cli")
    _edit_meta(s, lambda m: m["gradient"].update(noise_seed=5))
    assert main(["store", "info", str(s)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "motive: store: checking the inputs"  # the first log line, before any work
    assert len(lines) == 2 and "meta.json: checksum mismatch" in lines[1]  # then the error, in one line


def test_a_store_older_than_the_featurize_options_matches_their_defaults_only():
    new = {"gradient": {"sigma": 0.3, "objective": "flow", "deflate_appearance": False}}
    old = {"gradient": {"sigma": 0.3}}  # written before the options existed
    check_compatible(old, new)
    for option in ({"objective": "temporal"}, {"deflate_appearance": True}):
        with pytest.raises(StoreMismatch, match="gradient"):
            check_compatible(old, {"gradient": {**new["gradient"], **option}})
