"""Writing and reading the motion world: rendering in one process vs worker processes, and decoding
with a new colour converter per frame vs one per clip.

Runs with no arguments: writes a 300-clip pool split in a temporary folder with ``workers=0`` (in
this process) and with one worker per core, alternating, twice each; then decodes the split's clips
with ``frame.to_ndarray(format="rgb24")`` per frame (what ``read_video`` did before) and with
``read_video`` (one ``VideoReformatter`` per clip), alternating, twice each, and checks both give the
same pixels. Medians. Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

CLIPS = 300


def _per_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])


def main() -> dict:
    from motive.data.video import read_video
    from motive.demo.render import write_split
    from motive.demo.world import WorldConfig

    tmp = Path(tempfile.mkdtemp(prefix="motive_bench_"))
    config = WorldConfig(seed=0, pool_clips=CLIPS)
    parallel = min(4, os.cpu_count() or 1)
    render: dict[int, list[float]] = {0: [], parallel: []}
    for repeat in range(2):
        for workers in render:
            start = time.perf_counter()
            write_split(config, "pool", tmp / f"w{workers}_{repeat}", progress=False, workers=workers)
            render[workers].append(time.perf_counter() - start)
    clips = sorted((tmp / "w0_0" / "videos").glob("*.mp4"))
    decode: dict[str, list[float]] = {"per frame": [], "per clip": []}
    readers = {"per frame": _per_frame, "per clip": lambda p: read_video(p).frames}
    for _ in range(2):
        for name, read in readers.items():
            start = time.perf_counter()
            for clip in clips:
                read(clip)
            decode[name].append((time.perf_counter() - start) / len(clips))
    same = all(np.array_equal(_per_frame(c), read_video(c).frames) for c in clips[:20])
    r = {w: statistics.median(t) for w, t in render.items()}
    d = {k: statistics.median(t) for k, t in decode.items()}
    print(
        f"render + encode {CLIPS} clips of 17×64×64: 1 process {r[0]:.2f} s, {parallel} workers {r[parallel]:.2f} s"
    )
    print(
        f"decode per clip: converter per frame {1000 * d['per frame']:.1f} ms, per clip {1000 * d['per clip']:.1f} ms"
    )
    figures = {
        "clips": CLIPS,
        "render_serial_s": r[0],
        "render_parallel_s": r[parallel],
        "render_workers": parallel,
        "render_speedup": r[0] / r[parallel],
        "decode_ms_converter_per_frame": 1000 * d["per frame"],
        "decode_ms_converter_per_clip": 1000 * d["per clip"],
        "decode_speedup": d["per frame"] / d["per clip"],
        "same_pixels": same,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
