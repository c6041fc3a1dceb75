"""Motive: motion attribution for video generation (arXiv 2601.08828).

The API, importable from here::

    from motive import VideoModel, GradientConfig, featurize, attribute

Names are loaded on first use, so ``import motive.data.video`` (or a worker process) does not pay
for torch and diffusers until it needs them.
"""

from __future__ import annotations

import importlib
import sys
import types

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
    "GenerateConfig": "motive.generate",
    "generate_videos": "motive.generate",
    "DimensionConfig": "motive.dimensions",
    "score_videos": "motive.dimensions",
    "CompareConfig": "motive.compare",
    "compare": "motive.compare",
    "StudyConfig": "motive.study",
    "create_study": "motive.study",
    "study_report": "motive.study",
}
__all__ = ["__version__", *_API]


class _Package(types.ModuleType):
    """``motive.attribute`` (and ``evaluate``, ``finetune``, ``compare``) is the function, not the module
    of the same name, even after that module was imported (which sets the package's attribute to it).
    So ``import motive.evaluate as m`` gives the function too; ``importlib.import_module`` or ``from
    motive.evaluate import ...`` reach the module."""

    def __getattribute__(self, name: str):
        if name in _API:
            return getattr(importlib.import_module(_API[name]), name)
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    raise AttributeError(f"module 'motive' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
