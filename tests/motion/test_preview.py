import numpy as np

from motive.data.video import read_video
from motive.motion.preview import contact_sheet, overlay, write_contact_sheet, write_preview
from tests.motion.clips import object_clip


def test_overlay_tints_only_where_weight_is():
    frames = object_clip(3, size=64)
    weights = np.zeros((3, 8, 8), np.float32)  # any grid: resized to the frames
    np.testing.assert_array_equal(overlay(frames, weights), frames)
    weights[:, :4, :4] = 1.0
    tinted = overlay(frames, weights)
    assert np.abs(tinted[:, :24, :24].astype(int) - frames[:, :24, :24]).mean() > 20
    np.testing.assert_array_equal(tinted[:, 40:, 40:], frames[:, 40:, 40:])


def test_contact_sheet_rows_and_cut_columns():
    frames = object_clip(20, size=64)
    weights = np.random.default_rng(0).uniform(size=(20, 64, 64)).astype(np.float32)
    two_rows = contact_sheet(frames, weights, None, cuts=[7], title="clip", columns=6)
    three_rows = contact_sheet(frames, weights, weights, cuts=[7], title="clip", columns=6)
    assert two_rows.shape[1] == three_rows.shape[1] == 6 * 64  # five evenly spaced frames + the cut
    assert three_rows.shape[0] - two_rows.shape[0] == 64 + 18  # one more tile row with its caption


def test_preview_files_are_readable(tmp_path):
    frames = object_clip(9, size=64)
    weights = np.linspace(0, 1, 9 * 64 * 64, dtype=np.float32).reshape(9, 64, 64)
    video = read_video(write_preview(tmp_path / "preview.mp4", frames, weights, 8.0, cuts=[4]))
    assert video.num_frames == 9 and video.width == 128  # frame | overlay
    sheet = write_contact_sheet(tmp_path / "sheet.png", contact_sheet(frames, weights, None, [], "t"))
    assert sheet.stat().st_size > 1000
