"""Video reading and writing with PyAV (FFmpeg), plus folders of frames.

Frames are always ``uint8`` RGB arrays shaped ``[F, H, W, 3]``. Anything FFmpeg decodes is accepted
(mp4, webm, avi, mkv, gif, ...); a directory of image files is read as one clip in sorted order.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from motive.files import atomic_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
# The demuxers a clip may be read with. FFmpeg's playlist and list demuxers (hls, concat, ...) open the
# files a clip names, anywhere on disk or on the network, and image2 expands file-name patterns: a
# dataset must never make us read outside its folder. Only local files are opened, too.
DEMUXERS = (
    "mov", "mp4", "matroska", "webm", "avi", "gif", "mpegts", "flv", "asf", "ogg", "mpeg", "m4v",
    "h264", "hevc", "ivf", "nut", "mxf", "dv", "apng", "yuv4mpegpipe",
)  # fmt: skip
OPEN_OPTIONS = {"format_whitelist": ",".join(DEMUXERS), "protocol_whitelist": "file"}
# First bytes of the text formats that name other files, for a clear refusal.
_LISTS = {b"#EXTM3U": "an HLS playlist", b"ffconcat": "an FFmpeg concat list"}
DEFAULT_FRAMES_FPS = 16.0  # frame folders carry no rate; this is what we assume and record


class VideoError(ValueError):
    """A clip could not be read or written; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # picklable, so it can come back from a data-loading worker
        return (type(self), (self.path, self.reason))


@dataclass
class Video:
    """Decoded clip: ``frames`` is ``[F, H, W, 3]`` uint8 RGB; ``fps`` frames per second."""

    frames: np.ndarray
    fps: float
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


def read_video(
    path: str | Path, max_frames: int | None = None, frames_fps: float = DEFAULT_FRAMES_FPS
) -> Video:
    """Decode a video file or a folder of frames.

    ``max_frames`` stops decoding early (cheap probing of long clips). ``frames_fps`` is the rate
    assumed for frame folders, which carry none.
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "file not found")
    if path.is_dir():
        return _read_frame_folder(path, max_frames, frames_fps)
    with open(path, "rb") as fh:
        head = fh.read(64)
    for magic, what in _LISTS.items():
        if head.lstrip().startswith(magic):
            raise VideoError(path, f"{what}, which refers to other files: refused")
    try:
        with av.open(str(path), options=OPEN_OPTIONS) as container:
            if not container.streams.video:
                raise VideoError(path, "no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            frames = []
            # one reformatter for the whole clip: ``frame.to_ndarray(format=...)`` sets up a new
            # colour converter per frame, slower on small clips (BENCHMARKS.md "Writing and reading the world")
            to_rgb = av.video.reformatter.VideoReformatter()
            for frame in container.decode(stream):
                frames.append(to_rgb.reformat(frame, format="rgb24").to_ndarray())
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoError:
        raise
    except av.ArgumentError as exc:  # the demuxer FFmpeg detected is not one of DEMUXERS
        raise VideoError(path, f"not a video container Motive reads ({exc})") from exc
    except (av.FFmpegError, OSError, ValueError) as exc:  # PyAV raises subclasses of these
        raise VideoError(path, f"cannot decode: {exc}") from exc
    if not frames:
        raise VideoError(path, "zero frames decoded")
    fps = float(rate) if rate else DEFAULT_FRAMES_FPS
    return Video(np.stack(frames), fps, str(path))


def _read_frame_folder(path: Path, max_frames: int | None, fps: float) -> Video:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(path, "folder holds no image frames")
    if max_frames is not None:
        files = files[:max_frames]
    frames = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise VideoError(f, "cannot decode image frame")
        if frames and img.shape != frames[0].shape:
            raise VideoError(f, f"frame size {img.shape[:2]} differs from first frame {frames[0].shape[:2]}")
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return Video(np.stack(frames), fps, str(path))


def _codec_settings(codec: str, path: Path) -> tuple[str, str, dict[str, str]]:
    """(FFmpeg encoder, pixel format, options) for our three output codecs."""
    if codec == "h264":
        # note: x264 output is not always bit-identical between runs, even single-threaded (measured:
        # identical frames encoded differently under CPU load); decoded pixels differ by a few levels
        return "libx264", "yuv420p", {"crf": "18", "preset": "medium"}
    if codec == "ffv1":  # lossless, for tests that need exact pixels
        return "ffv1", "bgr0", {}
    if codec == "vp9":
        return "libvpx-vp9", "yuv420p", {"crf": "20", "b": "0", "deadline": "realtime"}
    if codec == "gif":
        return "gif", "rgb8", {}
    raise VideoError(path, f"unknown codec {codec!r}; use h264, vp9, ffv1 or gif")


def write_video(path: str | Path, frames: np.ndarray, fps: float, codec: str | None = None) -> Path:
    """Encode ``frames`` [F, H, W, 3] uint8 RGB. Codec defaults from the suffix (.gif → gif, .mkv → ffv1,
    .webm → vp9, else H.264). 4:2:0 codecs need even sizes; odd sizes are padded by one edge row/column."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VideoError(path, f"expected uint8 frames [F, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise VideoError(path, "no frames to write")
    if codec is None:
        codec = {".gif": "gif", ".mkv": "ffv1", ".webm": "vp9"}.get(path.suffix.lower(), "h264")
    encoder, pix_fmt, options = _codec_settings(codec, path)
    if pix_fmt == "yuv420p" and (frames.shape[1] % 2 or frames.shape[2] % 2):
        frames = np.pad(
            frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)), mode="edge"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w") as container:  # never half-written
        stream = container.add_stream(encoder, rate=rate, options=options)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = pix_fmt
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
