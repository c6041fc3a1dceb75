"""Motive: motion attribution for video generation (arXiv 2601.08828).

The API, importable from here::

    from motive import VideoModel, GradientConfig, featurize, attribute

Names are loaded on first use, so ``import motive.data.video`` (or a worker process) does not pay
for torch and diffusers until it needs them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "VideoModel": "motive.models.wan",
    "StandardiseTarget": "motive.data.standardise",
    "load_dataset": "motive.data.dataset",
    "MaskConfig": "motive.motion.mask",
    "GradientConfig": "motive.gradients",
    "FeaturizeOptions": "motive.store",
    "Store": "motive.store",
    "featurize": "motive.store",
    "merge": "motive.store",
    "cosine_scores": "motive.scoring",
    "majority_vote": "motive.scoring",
    "AttributionConfig": "motive.attribute",
    "attribute": "motive.attribute",
    "FinetuneConfig": "motive.finetune",
    "finetune": "motive.finetune",
    "ExportConfig": "motive.export",
    "export_selection": "motive.export",
    "EvalConfig": "motive.evaluate",
    "evaluate": "motive.evaluate",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'motive' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
