import numpy as np
import pytest

from motive.data.video import read_video
from motive.motion.cuts import cut_scores, detect_cuts, shot_starts
from motive.motion.validation import EXPECTED_CUTS
from tests.conftest import shared_data
from tests.motion.clips import camera_clip, object_clip, thumbnails, translation


def _other_shot(frames: int, seed: int) -> np.ndarray:
    """A different scene: other texture, other colours."""
    clip = camera_clip(frames, translation(1.0, 0.0), size=64, seed=seed).astype(np.float32)
    return (clip * np.array([0.4, 0.7, 1.0], np.float32) + 30).astype(np.uint8)


def test_hard_cut_is_found_at_the_first_frame_of_the_new_shot():
    a = object_clip(6, size=64)
    b = _other_shot(5, seed=9)
    assert detect_cuts(np.concatenate([a, b])) == [6]
    assert detect_cuts(np.concatenate([a, b, a])) == [6, 11]


def test_flash_fast_pan_and_short_clips_are_not_cuts():
    clip = object_clip(9, size=64)
    flash = clip.copy()
    flash[4] = 255  # one white frame
    assert detect_cuts(flash) == []
    assert detect_cuts(camera_clip(9, translation(12.0, 0.0), size=64)) == []
    assert detect_cuts(clip[:1]) == [] and cut_scores(clip[:1]).tolist() == [0.0]


def test_one_frame_shot_gives_two_cuts():
    a, b = object_clip(5, size=64), _other_shot(5, seed=4)
    other = np.full_like(a[:1], 40)
    assert detect_cuts(np.concatenate([a, other, b])) == [5, 6]


def test_shot_starts():
    np.testing.assert_array_equal(shot_starts(7, [2, 5]), [0, 0, 2, 2, 2, 5, 5])


@pytest.mark.parametrize("clip", list(EXPECTED_CUTS))
def test_real_cuts_match_the_manifest(clip):
    # detection works on 128-pixel thumbnails anyway; decoding straight to small frames saves seconds
    frames = thumbnails(shared_data() / "videos" / clip, max_frames=EXPECTED_CUTS[clip][-1] + 20)
    assert detect_cuts(frames) == EXPECTED_CUTS[clip]


@pytest.mark.parametrize(
    "clip", ["cogvideo__train_running.mp4", "cogvideo__resources_2.mp4", "animatediff__m02_05_tilt_up.gif"]
)
def test_fast_motion_is_not_a_cut(clip):
    assert detect_cuts(read_video(shared_data() / "videos" / clip).frames) == []
