"""The feature store: one unit vector per clip, plus everything needed to trust, resume and reuse it.

``format`` defines the files and the reader (``Store``), ``journal`` the multi-process writing
(ranks, locks, journals, merge), ``featurize`` the driver that fills a store. docs/formats.md
"Feature store" describes the folder for users.
"""

from motive.store.featurize import FeaturizeOptions, default_workers, featurize
from motive.store.format import (
    COMPAT_KEYS,
    FORMAT,
    Store,
    StoreError,
    StoreLocked,
    StoreMismatch,
    check_compatible,
    compat_diffs,
    dataset_fingerprint,
    is_store,
    remove_store,
)
from motive.store.journal import Ranks, info, merge

__all__ = [
    "COMPAT_KEYS",
    "FORMAT",
    "FeaturizeOptions",
    "Ranks",
    "Store",
    "StoreError",
    "StoreLocked",
    "StoreMismatch",
    "check_compatible",
    "compat_diffs",
    "dataset_fingerprint",
    "default_workers",
    "featurize",
    "info",
    "is_store",
    "merge",
    "remove_store",
]
