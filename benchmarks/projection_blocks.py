"""Featurize time per clip for two Fastfood block sizes, side by side in one run.

Runs with no arguments: builds a random-init tiny model and a 120-clip motion-world pool in a temporary
folder, fills the per-clip input cache once, then featurizes the pool with ``max_block`` 2**20 and
2**16 (the default). Prints a table and, as its last line, one JSON object of the figures.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path


def main() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="motive_bench_"))
    os.environ["MOTIVE_CACHE"] = str(tmp / "cache")
    from motive.cli.commands import quiet_libraries
    from motive.demo.render import write_split
    from motive.demo.world import WorldConfig
    from motive.gradients import GradientConfig
    from motive.models.tiny import build_tiny_model
    from motive.store import featurize

    quiet_libraries()
    write_split(WorldConfig(seed=0, pool_clips=120), "pool", tmp / "pool", progress=False)
    model = build_tiny_model(seed=0)
    featurize(model, tmp / "pool", tmp / "warm", GradientConfig(), progress=False)  # fill the input cache
    per_clip = {}
    for block in (2**20, 2**16):
        start = time.perf_counter()
        featurize(model, tmp / "pool", tmp / f"s{block}", GradientConfig(max_block=block), progress=False)
        per_clip[block] = (time.perf_counter() - start) / 120
    print(
        f"{'max_block':>10} {'s per clip':>11}   (tiny model, {model.num_parameters():,} parameters, cached inputs)"
    )
    for block, sec in per_clip.items():
        print(f"{block:>10} {sec:>11.4f}")
    figures = {
        "sec_per_clip_block_2_20": per_clip[2**20],
        "sec_per_clip_block_2_16": per_clip[2**16],
        "speedup_2_16_over_2_20": per_clip[2**20] / per_clip[2**16],
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
