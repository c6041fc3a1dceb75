"""Featurize time per clip on the demo's model size: vectorised per-sample gradients vs streaming.

Runs with no arguments: builds a random-init tiny model and a 160-clip motion-world pool in a temporary
folder, fills the per-clip input cache once, then featurizes the pool through ``motive.store.featurize``
with the vectorised path (the default for small models: a chunk's per-sample gradients from one
``torch.func.vmap`` pass, projected together) and with the streaming path (``BATCH_BYTES = 0``: one
clip at a time, projected inside backward), alternating, two repeats each. Also reports the largest
difference between the two stores' vectors and the projection's share (a chunk of 16 flat gradients
projected at once). Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

CLIPS = 160


def main() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="motive_bench_"))
    os.environ["MOTIVE_CACHE"] = str(tmp / "cache")
    import numpy as np
    import torch

    import motive.gradients
    from motive.cli.commands import quiet_libraries
    from motive.demo.render import write_split
    from motive.demo.world import WorldConfig
    from motive.gradients import GradientConfig
    from motive.models.tiny import build_tiny_model
    from motive.projection import Fastfood
    from motive.store import featurize

    quiet_libraries()
    write_split(WorldConfig(seed=0, pool_clips=CLIPS), "pool", tmp / "pool", progress=False)
    model = build_tiny_model(seed=0)
    featurize(model, tmp / "pool", tmp / "warm", GradientConfig(), progress=False)  # fill the input cache
    default_bytes = motive.gradients.BATCH_BYTES
    per_clip: dict[str, list[float]] = {"vectorised": [], "streaming": []}
    stores = {}
    for repeat in range(2):
        for path in per_clip:
            motive.gradients.BATCH_BYTES = default_bytes if path == "vectorised" else 0
            start = time.perf_counter()
            stores[path] = featurize(
                model, tmp / "pool", tmp / f"{path}{repeat}", GradientConfig(sigma=0.3), progress=False
            )
            per_clip[path].append((time.perf_counter() - start) / CLIPS)
    motive.gradients.BATCH_BYTES = default_bytes
    projection = Fastfood(model.num_parameters(), 512, 0)
    flat = torch.randn(16, model.num_parameters())  # a chunk's flat gradients [16, D]
    projection(flat)  # builds the randomness
    proj = []
    for _ in range(3):
        start = time.perf_counter()
        projection(flat)
        proj.append((time.perf_counter() - start) / 16)
    diff = float(
        np.abs(np.asarray(stores["vectorised"].vectors) - np.asarray(stores["streaming"].vectors)).max()
    )
    med = {k: statistics.median(v) for k, v in per_clip.items()}
    print(
        f"{'path':>11} {'s per clip':>11}   (tiny model, {model.num_parameters():,} parameters, cached inputs)"
    )
    for path, sec in med.items():
        print(f"{path:>11} {sec:>11.4f}")
    print(f"of which projecting a chunk of 16 flat gradients: {statistics.median(proj):.4f} s per clip")
    figures = {
        "sec_per_clip_vectorised": med["vectorised"],
        "sec_per_clip_streaming": med["streaming"],
        "speedup": med["streaming"] / med["vectorised"],
        "sec_per_clip_projection_in_vectorised": statistics.median(proj),
        "max_abs_vector_diff": diff,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
