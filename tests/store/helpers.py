"""Helpers shared by the store, attribute and command-line tests."""

import subprocess

import numpy as np
import pandas as pd

from motive.cli import main
from motive.gradients import GradientConfig
from motive.store import Store, featurize


def two_stores(model, data, tmp_path, other: GradientConfig) -> tuple[Store, Store]:
    """Stores of ``data`` with the default settings (D' = 32) and with ``other``."""
    a = featurize(model, data, tmp_path / "a", GradientConfig(proj_dim=32), progress=False)
    return a, featurize(model, data, tmp_path / "b", other, progress=False)


def cli(*args) -> int:
    """Run ``motive ARGS...`` in-process; paths may be given as Path objects."""
    return main([str(a) for a in args])


def attribute_cli(model_dir, store, queries, out, *extra) -> int:
    return cli(
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


def run_cli(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw
    )


def same_store(a: Store, b: Store) -> None:
    """Bit-identical vectors and the same index (apart from which shard holds a clip)."""
    assert np.array_equal(a.vectors, b.vectors)
    cols = [c for c in a.index.columns if c not in ("shard", "row")]
    pd.testing.assert_frame_equal(a.index[cols], b.index[cols])


def tiny_model_from(path):
    from motive.models.wan import VideoModel

    return VideoModel.from_pretrained(path)
