import numpy as np
import pytest

from motive.data.standardise import StandardiseTarget, largest_4n1, resample_indices, standardise
from motive.data.video import Video


def test_target_validation():
    with pytest.raises(ValueError, match="4n\\+1"):
        StandardiseTarget(frames=16)
    with pytest.raises(ValueError, match="multiple of 16"):
        StandardiseTarget(height=100)
    StandardiseTarget(frames=None, height=64, width=96)


def test_largest_4n1():
    assert [largest_4n1(n) for n in (1, 4, 5, 8, 9, 80, 81, 82)] == [1, 1, 5, 5, 9, 77, 81, 81]


def test_resample_same_rate_is_identity_prefix():
    idx, padded = resample_indices(100, 16.0, 16.0, 81)
    assert idx == list(range(81)) and padded == 0


def test_resample_halves_rate():
    idx, padded = resample_indices(60, 30.0, 15.0, 9)
    assert idx == [0, 2, 4, 6, 8, 10, 12, 14, 16] and padded == 0


def test_resample_pads_short_clip_and_records_it():
    idx, padded = resample_indices(10, 10.0, 10.0, 17)
    assert len(idx) == 17 and idx[-1] == 9 and padded == 7


def test_resample_keep_length_cuts_to_4n1():
    idx, padded = resample_indices(50, 25.0, 16.0, None)  # 2 s at 16 fps = 32 frames -> 29
    assert len(idx) == 29 and padded == 0


def test_standardise_shape_and_record():
    frames = np.zeros((40, 90, 160, 3), np.uint8)
    frames[:, :, 80:] = 255  # right half white
    out, record = standardise(Video(frames, 24.0), StandardiseTarget(fps=8, frames=9, height=32, width=48))
    assert out.frames.shape == (9, 32, 48, 3)
    assert out.fps == 8
    assert record.source_frames == 40 and record.source_size == (90, 160)
    assert record.frame_indices == [0, 3, 6, 9, 12, 15, 18, 21, 24]
    top, left, h, w = record.crop
    assert (h, w) == (32, 48)
    assert record.scale == pytest.approx(max(32 / 90, 48 / 160))
    # the centre crop keeps the half split in the middle
    assert out.frames[0, :, :20].max() < 30 and out.frames[0, :, -20:].min() > 225
