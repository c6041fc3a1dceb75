"""The world-clip tracker on true clips: trajectory error, survival and motion-type accuracy.

For each written world, tracks every clip of its ``base`` split (to fit the motion classifier) and of
its ``eval`` split (to test it), against the trajectories the world recorded
(``motive.demo.track.tracker_check``). The tracker is what scores generated motion; it must be right on
true clips first (trajectory error ≤ 1 px, motion accuracy ≥ 95%).

    python experiments/tracker.py runs/demo/world [WORLD ...]     # → WORLD/tracker_check.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from motive.demo.track import tracker_check


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("worlds", nargs="+", help="world folders (world.json, base/, eval/)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for world in map(Path, args.worlds):
        t0 = time.perf_counter()
        check = tracker_check(world) | {"seconds": time.perf_counter() - t0}
        (world / "tracker_check.json").write_text(json.dumps(check, indent=2))
        print(
            f"{world}: {check['clips']} eval clips, trajectory error {check['trajectory_error_px']:.2f} px "
            f"(max {check['trajectory_error_px_max']:.1f}), survival {check['survival']:.0%}, "
            f"motion accuracy {check['motion_accuracy']:.1%} ({check['seconds']:.0f}s)"
        )
        print("  confusions (true->named):", check["confusions"])


if __name__ == "__main__":
    main()
