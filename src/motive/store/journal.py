"""Writing a store from many processes: ranks, per-rank locks and journals, merging, progress.

While a store is being written, ``work/`` holds the plan (``plan.json``: the meta every rank and every
resumed run must agree with) and, per rank, an append-only vector file plus a JSON-lines journal with
one line per finished clip. A line is written only after its vector is flushed, so a killed run
resumes at the first clip without a line, recomputing its whole chunk (chunks are fixed groups of
``batch_size`` clips in dataset order), and ends bit-identical to an uninterrupted run. A rank's shard
is finalised atomically; ``merge`` joins the shards. Clip chunks are dealt to ranks round-robin, so
the result does not depend on the number of ranks. An advisory lock per rank keeps two processes
from writing the same part of a store.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from motive.files import atomic_path, write_text_atomic
from motive.inputs import cache_size
from motive.store.format import (
    FORMAT,
    INDEX,
    META,
    PLAN,
    WORK,
    Store,
    StoreError,
    StoreLocked,
    file_sha256,
    meta_checksum,
    shard_name,
)


@dataclass(frozen=True)
class Ranks:
    """Which part of the work this process does: rank ``rank`` of ``world`` (torchrun sets both)."""

    rank: int = 0
    world: int = 1
    group: bool = False  # a torch.distributed process group is up, so ranks can wait for each other

    @classmethod
    def current(cls) -> Ranks:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), True)
        return cls()

    def barrier(self, hours: float) -> None:
        """Wait for every rank, for up to ``hours`` (a gloo barrier: ``motive.parallel.wait_for_ranks``)."""
        if self.group:
            from datetime import timedelta

            from motive.parallel import wait_for_ranks

            wait_for_ranks(timedelta(hours=hours))


@contextmanager
def lock(path: Path, what: str):
    """An advisory exclusive lock (released by the kernel if the process dies); refuse if held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise StoreLocked(
                f"{what} is being written by another process ({fh.read().strip() or 'unknown'})"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Journal:
    """One rank's append-only progress: ``rank-R.vec`` (float32 rows) + ``rank-R.jsonl`` (a line per clip)."""

    def __init__(self, work: Path, rank: int, dim: int):
        self.vec_path, self.log_path = work / f"rank-{rank:05d}.vec", work / f"rank-{rank:05d}.jsonl"
        self.dim = dim
        self.rows: list[dict] = []
        kept = 0  # bytes of complete journal lines
        if self.log_path.is_file():
            for line in self.log_path.read_bytes().splitlines(keepends=True):
                try:
                    self.rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a kill: that clip is not done
                    break
                kept += len(line)
        # keep exactly the finished lines and one vector per line (a kill may leave a vector without its line)
        for file, size in ((self.log_path, kept), (self.vec_path, len(self.rows) * dim * 4)):
            with open(file, "ab") as fh:
                fh.truncate(size)
        self.done = {r["id"] for r in self.rows}
        self._vec, self._log = open(self.vec_path, "ab"), open(self.log_path, "a")

    def add(self, row: dict, vector: np.ndarray) -> None:
        self._vec.write(np.ascontiguousarray(vector, np.float32).tobytes())
        self._vec.flush()  # the vector reaches the OS before the line that declares it done
        self._log.write(json.dumps(row) + "\n")
        self._log.flush()
        self.rows.append(row)
        self.done.add(row["id"])

    def sync(self) -> None:
        for fh in (self._vec, self._log):
            os.fsync(fh.fileno())

    def close(self) -> None:
        self._vec.close()
        self._log.close()

    def vectors(self) -> np.ndarray:
        return np.fromfile(self.vec_path, np.float32).reshape(-1, self.dim)  # [n, D']


def finalise_rank(out: Path, journal: Journal, ranks: Ranks) -> None:
    """Write this rank's shard (rows sorted by clip id) and its index part, atomically."""
    rows = pd.DataFrame(journal.rows) if journal.rows else pd.DataFrame({"id": pd.Series(dtype=np.int64)})
    order = np.argsort(rows["id"].to_numpy(), kind="stable")
    vectors = journal.vectors()[order]  # [n_r, D']
    rows = rows.iloc[order].reset_index(drop=True)
    rows["shard"], rows["row"] = ranks.rank, np.arange(len(rows))
    part = out / WORK / f"rank-{ranks.rank:05d}.index.parquet"
    with atomic_path(part) as tmp:
        rows.to_parquet(tmp, index=False)
    shard = out / shard_name(ranks.rank, ranks.world)
    with atomic_path(shard) as tmp:  # the shard's presence marks the rank as finished
        np.save(tmp, vectors)


def all_shards_done(out: Path, world: int) -> bool:
    return all((out / shard_name(r, world)).is_file() for r in range(world))


def merge(path: str | Path) -> Store:
    """Join the finished rank shards of ``path`` into a store (writes index.parquet, then meta.json)."""
    path = Path(path)
    work = path / WORK
    if (path / META).is_file():
        return Store.open(path)
    if not (work / PLAN).is_file():
        raise FileNotFoundError(f"{path}: nothing to merge (no {WORK}/{PLAN})")
    plan = json.loads((work / PLAN).read_text())
    world, n = plan["layout"]["world_size"], plan["dataset"]["clips"]
    missing = [r for r in range(world) if not (path / shard_name(r, world)).is_file()]
    if missing:
        raise StoreError(
            f"{path}: rank(s) {missing} of {world} have not finished; rerun them (same command and ranks) first"
        )
    with ExitStack() as stack:  # no rank may be writing while we merge
        for r in range(world):
            stack.enter_context(lock(work / f"rank-{r:05d}.lock", f"{path} (rank {r})"))
        index = pd.concat(
            [pd.read_parquet(work / f"rank-{r:05d}.index.parquet") for r in range(world)],
            ignore_index=True,
        ).sort_values("id", kind="stable")
        if index["id"].tolist() != list(range(n)):
            raise StoreError(f"{path}: the shards hold {len(index)} clips, the plan {n}")
        with atomic_path(path / INDEX) as tmp:
            index.reset_index(drop=True).to_parquet(tmp, index=False)
        shards = [
            {
                "file": shard_name(r, world),
                "clips": int((index["shard"] == r).sum()),
                "sha256": file_sha256(path / shard_name(r, world)),
            }
            for r in range(world)
        ]
        meta = {k: v for k, v in plan.items() if k != "layout"}
        meta.update(format=FORMAT, shards=shards, index_sha256=file_sha256(path / INDEX))
        meta["checksum"] = meta_checksum(meta)
        write_text_atomic(path / META, json.dumps(meta, indent=2))
    shutil.rmtree(work)
    return Store.open(path)


def info(path: str | Path) -> dict:
    """What a store (finished or in progress) holds, as plain data for ``motive store info``."""
    path = Path(path)
    if (path / META).is_file():
        s = Store.open(path)
        counts = s.index["status"].value_counts().to_dict()
        return {
            "path": str(path),
            "state": "finished",
            "clips": len(s.index),
            "status": counts,
            "dim": s.meta["projection"]["d_out"],
            "shards": s.meta["shards"],
            "bytes": sum(sh.nbytes for sh in s.shards),
            "cache": dict(zip(("files", "bytes"), cache_size(path / "cache"))),  # featurize's default cache
            **{
                k: s.meta[k]
                for k in (
                    "data",
                    "dataset",
                    "model",
                    "gradient",
                    "projection",
                    "standardise",
                    "latent_shape",
                    "latent_dtype",
                    "motive_version",
                )
            },
        }
    plan_file = path / WORK / PLAN
    if not plan_file.is_file():
        raise FileNotFoundError(f"{path}: not a feature store")
    plan = json.loads(plan_file.read_text())
    world = plan["layout"]["world_size"]
    ranks = {}
    for r in range(world):
        log = path / WORK / f"rank-{r:05d}.jsonl"
        done = log.read_text().count("\n") if log.is_file() else 0
        ranks[r] = "finished" if (path / shard_name(r, world)).is_file() else f"{done} clips done"
    return {
        "path": str(path),
        "state": "in progress (resume with the same command)",
        "clips": plan["dataset"]["clips"],
        "ranks": ranks,
        **{k: plan[k] for k in ("data", "model", "gradient", "projection")},
    }
