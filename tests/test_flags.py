"""Flagged clips: what each flag means on a store's index, and which clips an exclusion removes."""

import pandas as pd
import pytest

from motive.flags import FLAGS, check_flags, clip_flags, excluded_clips


def index(**columns) -> pd.DataFrame:
    rows = {
        "status": ["ok", "ok", "ok", "ok", "failed"],
        "camera_only": [False, True, False, True, False],
        "residual_mean_flow": [1.0, 0.1, 0.0, 0.2, float("nan")],
        "cuts": ["[]", "[]", "[]", "[8]", "[]"],
        "mean_flow": [2.0, 3.0, 0.0, 3.0, float("nan")],
        "mask_mean": [0.2, 0.5, 0.0, 0.5, float("nan")],
    }
    return pd.DataFrame(rows | columns)


def test_each_flag_is_read_from_its_column_and_a_failed_clip_carries_none():
    flags = clip_flags(index())
    assert [sorted(f) for f in flags] == [[], ["camera-only"], ["no-motion"], ["camera-only", "cuts"], []]
    assert "0.10 px" in flags[1]["camera-only"] and "[8]" in flags[3]["cuts"]


def test_an_exclusion_removes_the_clips_with_any_named_flag_and_says_why():
    mask, reasons = excluded_clips(index(), ["cuts", "no-motion"])
    assert mask.tolist() == [False, False, True, True, False]
    assert reasons == [[], [], ["no-motion"], ["cuts"], []]  # only the excluded flags are reasons
    mask, reasons = excluded_clips(index(), list(FLAGS))
    assert reasons[3] == ["camera-only", "cuts"]
    assert not excluded_clips(index(), [])[0].any()


def test_an_unknown_flag_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown flag.*pans: choose from camera-only, cuts, no-motion"):
        check_flags(["cuts", "pans"])
