"""Scoring against a feature store: one query vs 10k and 1M stored clips, and the vote, on the floor.

Builds finished stores of N random unit vectors (D' = 512, float32, one shard, written in the store's
own format so ``Store.open`` verifies them) under a temporary folder, then times, median of repeats
after one warm call (the shard in the page cache):
- ``store``: ``Store.scores`` (memory-mapped shard, chunked, no re-normalisation of stored rows);
- ``old``: the previous path, ``cosine_scores(store.vectors, q)`` (float64, every row re-normalised);
- ``floor``: a plain float32 numpy matrix-vector product over the same rows held in memory;
and ``majority_vote`` over a [10k, 50] score matrix. Runs with no arguments; prints a table and, as its
last line, one JSON object. Needs about 2 GB of disk and 8 GB of memory (the old path at 1M).

    python benchmarks/scoring.py
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from motive.scoring import cosine_scores, majority_vote
from motive.store import FORMAT, Store
from motive.store.format import META, file_sha256, meta_checksum, shard_name

DIM = 512


def write_store(path: Path, n: int, seed: int = 0) -> None:
    """A finished one-shard store of ``n`` random unit vectors, written piece by piece."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    shard = np.lib.format.open_memmap(path / shard_name(0, 1), mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, 1 << 16):
        x = rng.standard_normal((min(1 << 16, n - start), DIM), dtype=np.float32)
        shard[start : start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    shard.flush()
    del shard
    ids = np.arange(n)
    index = pd.DataFrame(
        {"id": ids, "video": [f"v{i}.mp4" for i in ids], "status": "ok", "shard": 0, "row": ids}
    )
    index.to_parquet(path / "index.parquet", index=False)
    meta = {
        "projection": {"d_out": DIM},
        "dataset": {"clips": n},
        "format": FORMAT,
        "shards": [{"file": shard_name(0, 1), "clips": n, "sha256": file_sha256(path / shard_name(0, 1))}],
        "index_sha256": file_sha256(path / "index.parquet"),
    }
    meta["checksum"] = meta_checksum(meta)
    (path / META).write_text(json.dumps(meta))


def median_ms(fn, repeats: int) -> float:
    fn()  # warm: page cache, allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="motive_scoring_"))
    figures: dict[str, float] = {}
    rows = []
    try:
        for n, repeats in ((10_000, 50), (1_000_000, 5)):
            write_store(tmp / f"s{n}", n)
            store = Store.open(tmp / f"s{n}")
            query = np.random.default_rng(1).standard_normal((1, DIM)).astype(np.float32)
            new = median_ms(lambda store=store, query=query: store.scores(query), repeats)
            held = np.asarray(store.vectors)  # [N, D'] in memory, for the old path and the floor
            old = median_ms(
                lambda held=held, query=query: cosine_scores(held, query), 3 if n > 10_000 else repeats
            )
            floor = median_ms(lambda held=held, query=query: held @ query[0], repeats)
            np.testing.assert_allclose(store.scores(query), cosine_scores(held, query), atol=2e-6)
            rows.append((f"1 query vs {n:,}", new, old, floor))
            figures.update({f"ms_store_{n}": new, f"ms_old_{n}": old, f"ms_floor_{n}": floor})
            del held, store
        scores = Store.open(tmp / "s10000").scores(
            np.random.default_rng(2).standard_normal((50, DIM)).astype(np.float32)
        )  # [10k, 50]
        vote = median_ms(lambda: majority_vote(scores), 20)
        figures["ms_vote_50x10000"] = vote
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| case | Store.scores (ms) | old cosine_scores (ms) | numpy floor (ms) |")
    print("|---|---|---|---|")
    for name, new, old, floor in rows:
        print(f"| {name} | {new:.2f} | {old:.1f} | {floor:.2f} |")
    print(f"| majority vote, 50 queries × 10,000 clips | {vote:.1f} | | |")
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
