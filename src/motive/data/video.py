"""Video reading and writing with PyAV (FFmpeg), plus folders of frames.

Frames are always ``uint8`` RGB arrays shaped ``[F, H, W, 3]``. Anything FFmpeg decodes is accepted
(mp4, webm, avi, mkv, gif, ...); a directory of image files is read as one clip in sorted order.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation

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


Decoded = av.VideoFrame | np.ndarray  # a video frame as decoded, or a folder image as read (BGR [H, W, 3])


@contextmanager
def _decode_errors(path: Path) -> Iterator[None]:
    """Turn FFmpeg's and the OS's errors while reading ``path`` into a ``VideoError`` naming it."""
    try:
        yield
    except VideoError:
        raise
    except av.ArgumentError as exc:  # the demuxer FFmpeg detected is not one of DEMUXERS
        raise VideoError(path, f"not a video container Motive reads ({exc})") from exc
    except (av.FFmpegError, OSError, ValueError) as exc:  # PyAV raises subclasses of these
        raise VideoError(path, f"cannot decode: {exc}") from exc


class ClipReader:
    """A clip (video file or folder of frames) decoded one frame at a time, converted to RGB on request.

    A caller that needs only some frames skips the others without converting them and stops iterating
    after the last one it needs, so a long clip never sits in memory whole. ``decoded`` counts the
    frames taken from the decoder (folder images read) and ``converted`` the ones turned into RGB.
    Use as a context manager: the container is closed on exit.
    """

    def __init__(self, path: str | Path, frames_fps: float = DEFAULT_FRAMES_FPS):
        self.path = Path(path)
        self.decoded = 0
        self.converted = 0
        self._container: av.container.InputContainer | None = None
        self._files: list[Path] = []
        self._first_shape: tuple[int, ...] | None = None  # folder frames must all share it
        self._frames: Generator[tuple[int, Decoded], None, None] | None = None
        self.fps = float(frames_fps)
        # frames the container (or folder listing) states, None if it states none; headers can be wrong
        self.stated_frames: int | None = None
        if not self.path.exists():
            raise VideoError(self.path, "file not found")
        if self.path.is_dir():
            self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise VideoError(self.path, "folder holds no image frames")
            self.stated_frames = len(self._files)
            return
        if not self.path.is_file():  # a named pipe, socket or device: opening it could block forever
            raise VideoError(self.path, "not a regular file (a pipe, socket or device)")
        with open(self.path, "rb") as fh:
            head = fh.read(64)
        for magic, what in _LISTS.items():
            if head.lstrip().startswith(magic):
                raise VideoError(self.path, f"{what}, which refers to other files: refused")
        with _decode_errors(self.path):
            self._container = av.open(str(self.path), options=OPEN_OPTIONS)
            try:
                if not self._container.streams.video:
                    raise VideoError(self.path, "no video stream")
                self._stream = self._container.streams.video[0]
                self._stream.thread_type = "AUTO"
                rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
            except BaseException:
                self.close()
                raise
        self.fps = float(rate) if rate else DEFAULT_FRAMES_FPS
        self.stated_frames = int(self._stream.frames) or None
        # one reformatter for the whole clip: ``frame.to_ndarray(format=...)`` sets up a new colour
        # converter per frame, slower on small clips (BENCHMARKS.md "Writing and reading the world")
        self._reformatter = av.video.reformatter.VideoReformatter()

    def __enter__(self) -> ClipReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._frames is not None:  # end a decode left part way before closing its container
            self._frames.close()
            self._frames = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def __iter__(self) -> Iterator[tuple[int, Decoded]]:
        """(index, frame) for each frame in order, unconverted; see ``size`` and ``rgb``. Once only."""
        if self._frames is not None or self.decoded:
            raise RuntimeError("a ClipReader is iterated once")
        self._frames = self._decode()
        return self._frames

    def _decode(self) -> Generator[tuple[int, Decoded], None, None]:
        if self._container is None:
            for f in self._files:
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)  # [H, W, 3] BGR
                if img is None:
                    raise VideoError(f, "cannot decode image frame")
                if self._first_shape is None:
                    self._first_shape = img.shape
                elif img.shape != self._first_shape:
                    raise VideoError(
                        f, f"frame size {img.shape[:2]} differs from first frame {self._first_shape[:2]}"
                    )
                self.decoded += 1
                yield self.decoded - 1, img
            return
        with _decode_errors(self.path):
            for frame in self._container.decode(self._stream):
                self.decoded += 1
                yield self.decoded - 1, frame

    @staticmethod
    def size(frame: Decoded) -> tuple[int, int]:
        """(H, W) of a frame, without converting it."""
        if isinstance(frame, np.ndarray):
            return int(frame.shape[0]), int(frame.shape[1])
        return int(frame.height), int(frame.width)

    def rgb(
        self,
        frame: Decoded,
        size: tuple[int, int] | None = None,
        interpolation: str | Interpolation | None = None,
    ) -> np.ndarray:
        """The frame as RGB ``[H, W, 3]`` uint8. ``size`` (H, W) resizes a video frame in the same FFmpeg
        conversion, with ``interpolation`` (a PyAV ``Interpolation``), so the full-size RGB frame is
        never made; folder images are already arrays, to be resized by the caller."""
        if isinstance(frame, np.ndarray):
            if size is not None:
                raise ValueError("ClipReader.rgb resizes video frames only, not folder images")
            self.converted += 1
            return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        self.converted += 1
        with _decode_errors(self.path):
            if size is None:
                return self._reformatter.reformat(frame, format="rgb24").to_ndarray()
            out = self._reformatter.reformat(
                frame, format="rgb24", width=size[1], height=size[0], interpolation=interpolation
            )
            return out.to_ndarray()


def read_video(
    path: str | Path, max_frames: int | None = None, frames_fps: float = DEFAULT_FRAMES_FPS
) -> Video:
    """Decode a video file or a folder of frames.

    ``max_frames`` stops decoding early (cheap probing of long clips). ``frames_fps`` is the rate
    assumed for frame folders, which carry none.
    """
    frames = []
    with ClipReader(path, frames_fps) as reader:
        for _, frame in reader:
            frames.append(reader.rgb(frame))  # [H, W, 3]
            if max_frames is not None and len(frames) >= max_frames:
                break
    if not frames:
        raise VideoError(reader.path, "zero frames decoded")
    return Video(np.stack(frames), reader.fps, str(reader.path))  # [F, H, W, 3]


def _codec_settings(codec: str, path: Path) -> tuple[str, str, dict[str, str]]:
    """(FFmpeg encoder, pixel format, options) for our three output codecs."""
    if codec == "h264":
        # no macroblock-tree rate control: x264's reads memory it never wrote for it, so the same frames
        # encoded twice in one busy process gave different videos (measured with the heap filled with
        # garbage first: 11 of 20 decoded identically, up to 16 grey levels apart; 30 of 30 without it).
        # Without it, CRF lets P-frames refine a still scene the I-frame left coarse (a still world clip
        # changed by 0.10-0.18 grey levels a pixel and frame on average, up to 21 at a pixel, which the
        # motion mask reads as motion); one quantizer for I- and P-frames (qp 18, ipratio 1) keeps it
        # under 0.02 (x264's default with the tree: under 0.005).
        return "libx264", "yuv420p", {"qp": "18", "preset": "medium", "x264-params": "mbtree=0:ipratio=1"}
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
