import numpy as np
import pytest

from motive.data.video import VideoError, read_video, write_video
from tests.conftest import shared_data


def _clip(frames=9, h=48, w=64, seed=0):
    """Smooth moving gradient: compresses well, so lossy error bounds are meaningful."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for f in range(frames):
        r = (xx * 4 + f * 8) % 256
        g = (yy * 5) % 256
        b = ((xx + yy) * 2 + f * 3) % 256
        out.append(np.stack([r, g, b], -1))
    return np.asarray(out, dtype=np.uint8)


@pytest.mark.parametrize("suffix,bound", [(".mp4", 6.0), (".webm", 8.0), (".avi", 6.0), (".mkv", 0.0)])
def test_round_trip(tmp_path, suffix, bound):
    frames = _clip()
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=12.0)
    video = read_video(path)
    assert video.frames.shape == frames.shape
    assert video.fps == pytest.approx(12.0)
    err = np.abs(video.frames.astype(float) - frames).mean()
    assert err <= bound, f"{suffix}: mean abs error {err}"


def test_lossless_ffv1_is_exact(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    video = read_video(write_video(tmp_path / "x.mkv", frames, fps=8))
    np.testing.assert_array_equal(video.frames, frames)


def test_gif_round_trip_keeps_frames_and_size(tmp_path):
    frames = _clip(frames=6)
    video = read_video(write_video(tmp_path / "x.gif", frames, fps=10))
    assert video.frames.shape == frames.shape
    assert np.abs(video.frames.astype(float) - frames).mean() < 40  # 8-bit palette


def test_odd_size_is_padded_for_h264(tmp_path):
    video = read_video(write_video(tmp_path / "odd.mp4", _clip(h=33, w=47), fps=8))
    assert video.frames.shape[1:3] == (34, 48)


def test_frame_folder(tmp_path):
    import cv2

    frames = _clip(frames=4)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f[..., ::-1])
    video = read_video(folder, frames_fps=5)
    np.testing.assert_array_equal(video.frames, frames)
    assert video.fps == 5


def test_errors_name_file_and_reason(tmp_path):
    with pytest.raises(VideoError, match="file not found"):
        read_video(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(VideoError, match="bad.mp4: cannot decode"):
        read_video(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no image frames"):
        read_video(tmp_path / "empty")
    with pytest.raises(VideoError, match="expected uint8"):
        write_video(tmp_path / "x.mp4", np.zeros((3, 8, 8), np.uint8), fps=8)


@pytest.mark.parametrize(
    "name,frames,size",
    [
        ("imageio__newtonscradle.gif", 36, (150, 200)),
        ("opencv-vtest__vtest_reencoded.avi", 795, (360, 480)),
        ("moviepy__big_buck_bunny_0_30.webm", 30, (720, 1280)),
        ("cogvideo__train_running.mp4", 49, (480, 720)),
    ],
)
def test_real_clips_decode(name, frames, size):
    path = shared_data() / "videos" / name
    limit = 30 if name.endswith(".webm") else None  # 720 HD frames are slow; the first 30 prove the codec
    video = read_video(path, max_frames=limit)
    assert video.num_frames == frames
    assert (video.height, video.width) == size


def _outside_and_inside(tmp_path):
    """A real clip outside a dataset folder, and files inside the folder that name it."""
    outside, inside = tmp_path / "outside", tmp_path / "dataset"
    outside.mkdir()
    inside.mkdir()
    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 32, 3), dtype=np.uint8)
    write_video(outside / "secret.ts", frames, 8.0)
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n../outside/secret.ts\n#EXT-X-ENDLIST\n"
    (inside / "playlist.m3u8").write_text(playlist)
    (inside / "renamed.mp4").write_text(playlist)  # the same playlist behind a video suffix
    (inside / "list.ffconcat").write_text(f"ffconcat version 1.0\nfile '{outside / 'secret.ts'}'\n")
    (inside / "bom.mp4").write_bytes(b"\xef\xbb\xbf" + playlist.encode())  # FFmpeg's own sniffing
    return outside, inside


def test_files_that_name_other_files_are_refused_and_never_followed(tmp_path):
    from tests.audit import OpenAudit

    outside, inside = _outside_and_inside(tmp_path)
    audit = OpenAudit(outside)
    try:
        for name, reason in [
            ("playlist.m3u8", "HLS playlist"),
            ("renamed.mp4", "HLS playlist"),
            ("list.ffconcat", "concat list"),
            ("bom.mp4", "cannot decode"),
        ]:
            with pytest.raises(VideoError, match=reason) as exc:
                read_video(inside / name)
            assert str(inside / name) in str(exc.value)
        assert audit.opened() == []  # nothing outside the dataset folder was opened
        read_video(outside / "secret.ts")
        assert "secret.ts" in audit.opened()  # the audit does see FFmpeg's opens
    finally:
        audit.close()


def test_h264_of_the_same_frames_is_the_same_whatever_memory_held_before(tmp_path):
    """x264's macroblock tree read memory it never wrote: in a process whose heap held garbage the same
    frames gave different videos (up to 16 grey levels). Written without it, they decode identically."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, 2 * i, axis=1) for i in range(17)])  # a pan over noise
    decoded = []
    for k in range(8):
        sizes = [4096 * (1 + (k + i) % 64) for i in range(400)]
        blocks = [libc.malloc(n) for n in sizes]
        for p, n in zip(blocks, sizes):
            ctypes.memset(p, (k * 37 + 11) % 256, n)  # garbage that later allocations may be given
        for p in blocks:
            libc.free(p)
        decoded.append(read_video(write_video(tmp_path / f"{k}.mp4", frames, 16.0)).frames)
    assert all(np.array_equal(d, decoded[0]) for d in decoded)


@pytest.mark.parametrize("background", ["brick", "cloudy", "checkered", "dotted", "striped"])
def test_h264_keeps_a_still_scene_nearly_still(tmp_path, background):
    """A still clip stays nearly still through H.264 (what the motion mask sees): without macroblock-tree
    rate control, CRF let P-frames refine the I-frame's scene, a mean change of 0.10–0.18 grey levels a
    pixel and frame (up to 21 at a pixel); one quantizer for I- and P-frames keeps it under 0.02."""
    from motive.demo.render import render_clip
    from motive.demo.world import ClipSpec

    spec = ClipSpec("static", "red", "ball", background, "none", frames=17, seed=3)
    frames, _ = render_clip(spec, 64, 64)
    assert not np.diff(frames.astype(int), axis=0).any()  # still before encoding
    write_video(tmp_path / "still.mp4", frames, 8.0)
    decoded = read_video(tmp_path / "still.mp4").frames.astype(int)  # [F, H, W, 3]
    assert np.abs(np.diff(decoded, axis=0)).mean() < 0.02
