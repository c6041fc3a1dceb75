"""Building the Fastfood tables: one thread against every core, and what that means at real size.

Runs with no arguments: builds the kept tables (5 bytes per coordinate, blocks of 2^16, D' = 512) of
``--blocks`` blocks with 1 thread and with every core this process may use (medians of 3 interleaved
runs after a warm-up), checks the two are the same bytes, and extrapolates the per-block time to the block counts of the real transformers (their
parameters counted on the meta device, nothing allocated). Wall time on a shared machine depends on
its load; the CPU time per block (all threads) is the work, so on 16 idle cores the build takes about
that ÷ 16 (the threads share nothing but the tables they write, each its own rows). Prints a table and, as its last line, one
JSON object of the figures.

    python benchmarks/projection_tables.py               # 600 blocks (39 M coordinates, 0.18 GiB)
    python benchmarks/projection_tables.py --blocks 100  # seconds: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

BLOCK = 2**16
REPEATS = 3  # medians of 3


def real_blocks() -> dict[str, int]:
    """Fastfood blocks of each released transformer (one expert of Wan2.2-A14B)."""
    from diffusers import WanTransformer3DModel

    from motive.models.shapes import VARIANTS

    out = {}
    for name, variant in VARIANTS.items():
        with torch.device("meta"):
            params = sum(p.numel() for p in WanTransformer3DModel(**variant["transformer"]).parameters())
        out[name] = -(-params // BLOCK)
    return out


def build_seconds(blocks: int, threads: int) -> tuple[float, float, torch.Tensor]:
    """(wall seconds, CPU seconds of every thread) to build ``blocks`` blocks' tables with ``threads``
    threads, and the tables' bytes."""
    from motive.projection import Fastfood

    projection = Fastfood(blocks * BLOCK, 512, seed=0, max_block=BLOCK)
    start, cpu = time.perf_counter(), time.process_time()
    projection.prepare_all(threads=threads)
    return time.perf_counter() - start, time.process_time() - cpu, projection._buffer


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=600)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    build_seconds(16, cores)  # warm-up: imports, first calls
    runs: dict[int, list[tuple[float, float]]] = {1: [], cores: []}
    for _ in range(REPEATS):  # interleaved, so machine noise falls on both
        for threads in runs:
            wall, cpu, tables = build_seconds(args.blocks, threads)
            runs[threads].append((wall, cpu))
            if threads == 1:
                serial = tables
            else:
                same = torch.equal(serial, tables)
        del tables
    ms = {t: 1e3 * statistics.median(w for w, _ in r) / args.blocks for t, r in runs.items()}
    cpu_ms = {t: 1e3 * statistics.median(c for _, c in r) / args.blocks for t, r in runs.items()}
    print(f"{args.blocks} blocks of 2^16 (D' = 512), {cores} cores, tables bit-identical: {same}")
    print(f"{'threads':>8} {'wall ms per block':>18} {'CPU ms per block':>17} {'speed-up':>9}")
    for threads, value in ms.items():
        print(f"{threads:>8} {value:>18.2f} {cpu_ms[threads]:>17.2f} {ms[1] / value:>9.2f}")
    real = real_blocks()
    # the work is the CPU time per block; on c idle cores the threads share it c ways
    per_block = {
        "1 idle core": cpu_ms[1],
        f"{cores} threads here": ms[cores],
        "16 idle cores": cpu_ms[cores] / 16,
    }
    print(f"\n{'transformer':<18} {'blocks':>8}" + "".join(f" {f's, {k}':>24}" for k in per_block))
    for name, m in real.items():
        print(f"{name:<18} {m:>8,}" + "".join(f" {m * v / 1e3:>24.1f}" for v in per_block.values()))
    figures = {
        "blocks": args.blocks,
        "cores": cores,
        "bit_identical": same,
        "wall_ms_per_block": {str(k): round(v, 3) for k, v in ms.items()},
        "cpu_ms_per_block": {str(k): round(v, 3) for k, v in cpu_ms.items()},
        "speedup": round(ms[1] / ms[cores], 2),
        "real_blocks": real,
        "expected_16_core_s": {n: round(m * cpu_ms[cores] / 16e3, 1) for n, m in real.items()},
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
