"""Fastfood vs a dense Gaussian projection at D = 2^22 and 2^24, D' = 512: time and peak memory.

The dense baseline is generated block-wise the way TRAK's CPU ``BasicProjector`` does it: the
[D, D'] Gaussian matrix is never held whole; for each block of ``DENSE_BLOCK`` output columns a
seeded [D, DENSE_BLOCK] block is generated and multiplied, so every projection regenerates the whole
matrix (storing it would take D·D'·4 bytes: 8.6 GB at 2^22, 34 GB at 2^24). Fastfood keeps its
randomness (5 bytes per input coordinate) after the first call, so its steady-state time per
projection and its first call (randomness included) are both reported.

Each case runs in its own subprocess so peak memory (ru_maxrss above the process's baseline after
the input vector exists) is its own. Runs with no arguments; prints a table and, as its last line,
one JSON object: ``speedup_vs_dense`` (dense seconds ÷ Fastfood steady seconds, at the largest D)
and ``memory_ratio_vs_dense`` (Fastfood peak extra memory ÷ dense peak extra memory, at the
largest D; below 1 means Fastfood needs less).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

D_OUT = 512
DENSE_BLOCK = 100  # TRAK's default block_size for BasicProjector
SIZES = (22, 24)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _case(kind: str, log2d: int) -> dict:
    import torch

    from motive.projection import Fastfood

    torch.manual_seed(0)
    d = 2**log2d
    x = torch.randn(1, d)  # [1, D] one flat gradient
    base = _rss_mb()
    if kind == "dense":
        t = time.perf_counter()
        out = torch.zeros(1, D_OUT)
        gen = torch.Generator().manual_seed(0)
        for start in range(0, D_OUT, DENSE_BLOCK):
            width = min(DENSE_BLOCK, D_OUT - start)
            block = torch.randn(d, width, generator=gen) / D_OUT**0.5  # [D, width]
            out[:, start : start + width] = x @ block
            del block
        return {"seconds": time.perf_counter() - t, "peak_extra_mb": _rss_mb() - base}
    ff = Fastfood(d, D_OUT, seed=0)
    t = time.perf_counter()
    first = ff(x)
    first_s = time.perf_counter() - t
    times = []
    for _ in range(3):
        t = time.perf_counter()
        again = ff(x)
        times.append(time.perf_counter() - t)
    assert torch.equal(first, again)
    return {
        "seconds": min(times),
        "first_call_seconds": first_s,
        "peak_extra_mb": _rss_mb() - base,
        "randomness_mb": ff.nbytes / 2**20,
    }


def main() -> dict:
    rows = {}
    for log2d in SIZES:
        for kind in ("fastfood", "dense"):
            proc = subprocess.run(
                [sys.executable, __file__, "--case", kind, str(log2d)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows[f"{kind}_2^{log2d}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'case':>16} {'s / projection':>15} {'first call s':>13} {'peak extra MB':>14}")
    for name, r in rows.items():
        first = f"{r['first_call_seconds']:.3f}" if "first_call_seconds" in r else "-"
        print(f"{name:>16} {r['seconds']:>15.4f} {first:>13} {r['peak_extra_mb']:>14.0f}")
    top = SIZES[-1]
    ff, dense = rows[f"fastfood_2^{top}"], rows[f"dense_2^{top}"]
    figures = {
        "d_out": D_OUT,
        "dense_block": DENSE_BLOCK,
        "cases": rows,
        "speedup_vs_dense": dense["seconds"] / ff["seconds"],
        "speedup_vs_dense_first_call": dense["seconds"] / ff["first_call_seconds"],
        "memory_ratio_vs_dense": ff["peak_extra_mb"] / dense["peak_extra_mb"],
        "speedup_by_size": {
            f"2^{s}": rows[f"dense_2^{s}"]["seconds"] / rows[f"fastfood_2^{s}"]["seconds"] for s in SIZES
        },
    }
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--case":
        print(json.dumps(_case(sys.argv[2], int(sys.argv[3]))))
    else:
        print(json.dumps(main()))
