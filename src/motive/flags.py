"""Flagged clips: training clips whose motion a fine-tune should not learn from.

The motion stage records per clip (in the feature store's index) whether its motion is explained by
the camera alone, whether it holds hard cuts, and whether anything moves at all. Such clips can still
score high against a query (a pan moves every pixel the way an object would), so ``attribute
--exclude`` keeps chosen kinds out of the selection and lists them apart with the reason; the report
shows every flagged clip either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FLAGS = ("camera-only", "cuts", "no-motion")


def check_flags(names: list[str]) -> None:
    """Refuse a flag name that is not one of ``FLAGS``, saying which are."""
    if unknown := sorted(set(names) - set(FLAGS)):
        raise ValueError(f"unknown flag(s) {', '.join(unknown)}: choose from {', '.join(FLAGS)}")


def clip_flags(index: pd.DataFrame) -> list[dict[str, str]]:
    """Per row of a store's index (clip order), the flags the clip carries: flag name → detail. A clip
    that failed carries none (it is out of every selection already)."""
    flags = []
    for _, r in index.iterrows():
        found: dict[str, str] = {}
        if r["status"] == "ok":
            if bool(r.get("camera_only", False)):
                found["camera-only"] = (
                    f"residual flow {r['residual_mean_flow']:.2f} px once the camera is removed"
                )
            if str(r.get("cuts", "[]")) not in ("[]", "", "nan"):
                found["cuts"] = f"hard cuts at frames {r['cuts']}"
            if r.get("mean_flow", 1.0) == 0 or r.get("mask_mean", 1.0) == 0:
                found["no-motion"] = "zero flow: the clip scores 0 against everything"
        flags.append(found)
    return flags


def excluded_clips(index: pd.DataFrame, exclude: list[str]) -> tuple[np.ndarray, list[list[str]]]:
    """(mask [N] of clips carrying any flag in ``exclude``, per clip the excluded flags it carries:
    empty when kept)."""
    check_flags(exclude)
    reasons = [[f for f in flags if f in exclude] for flags in clip_flags(index)]
    return np.array([bool(r) for r in reasons], dtype=bool), reasons
