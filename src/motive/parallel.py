"""Worker processes (a safe way to start them, independent jobs in single-threaded workers) and the
torchrun process group's collectives.

A fine-tune of the demo's tiny model runs batches of 8 short clips: ops too small for torch's
intra-op threads to pay on a few cores, so the demo runs its fine-tunes and evaluations as jobs of
``Processes``, one single-threaded worker per core (BENCHMARKS.md "The demo's fine-tunes in worker
processes" measures the gain). Featurizing is not split this way: its vectorised gradient batches
already use every thread.

Under torchrun on GPUs the process group is NCCL for CUDA tensors with gloo beside it for CPU ones
(``group_backend``): an NCCL-only group has no backend for a CPU tensor, so a stray CPU scalar in a
collective crashes the first multi-rank step, which no single-GPU run shows. ``all_reduce`` refuses a
tensor on a device the group has no backend for, with its device in the message. ``wait_for_ranks``
is the barrier of long, uneven waits (a featurize rank that finished or resumed waits for the slowest
one, hours at 14B): on a gloo group of its own with an explicit timeout, since NCCL's collectives time
out after 10 minutes and a barrier on NCCL would end the run.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from multiprocessing.context import ForkServerContext, ForkServerProcess

# imported once in the fork server, so workers start with torch, diffusers, OpenCV and the store loaded (a name,
# not an import: this module stays below everything it serves)
PRELOAD = ["motive.store"]


@contextmanager
def _main_hidden() -> Iterator[None]:
    """While a worker starts, hide the caller's ``__main__`` from multiprocessing, which would otherwise
    have the worker import it again: a user's script without an ``if __name__ == "__main__":`` guard
    would re-run in every worker (our workers run only motive functions, so they never need it)."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)


class _Process(ForkServerProcess):
    def start(self) -> None:
        with _main_hidden():
            super().start()


class _Context(ForkServerContext):
    Process = _Process


def forkserver_context() -> ForkServerContext:
    """Processes start from a fresh fork server (with ``PRELOAD`` imported), never by forking a parent
    whose thread pools (torch, OpenCV, OpenMP) are already running — that can deadlock the child —
    and without importing the caller's main module again (``_main_hidden``), so a script or notebook
    calling the API needs no ``__main__`` guard."""
    ctx = _Context()
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def worker_setup(parent: int) -> None:
    """Set-up of a single-threaded worker process that exits with process ``parent``."""
    single_threaded()
    exit_with_parent(parent)


def exit_with_parent(parent: int) -> None:
    """End this worker soon after process ``parent`` is gone. A worker started from the fork server
    is the fork server's child, so nothing else would end it (nor the fork server and the resource
    tracker that it keeps alive) when the main process is killed."""
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="exit-with-parent").start()


def _exit_with(pid: int) -> None:
    while True:
        time.sleep(0.5)
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            os._exit(1)


def single_threaded() -> None:
    """One core per process: torch and OpenCV each use a single thread."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def default_processes() -> int:
    """One process per core, at most 8 (each holds its own copy of the model and data)."""
    return max(1, min(8, os.cpu_count() or 1))


class Processes:
    """``n`` single-threaded worker processes (a context manager). ``n`` = 1 runs every job in the
    calling process, unchanged, so the same code path serves both."""

    def __init__(self, n: int | None = None):
        self.n = default_processes() if n is None else n
        if self.n < 1:
            raise ValueError(f"processes must be ≥ 1, got {self.n}")
        self._pool = (
            ProcessPoolExecutor(
                self.n, mp_context=forkserver_context(), initializer=worker_setup, initargs=(os.getpid(),)
            )
            if self.n > 1
            else None
        )

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        """Run ``fn(*args, **kwargs)`` in a worker (``fn`` and arguments must pickle)."""
        if self._pool is not None:
            return self._pool.submit(fn, *args, **kwargs)
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # delivered through the future, as a worker's would be
            future.set_exception(exc)
        return future

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def group_backend(device: str) -> str:
    """The torchrun process group's backends for ranks on ``device``: NCCL for CUDA tensors and gloo for
    CPU ones on GPUs (barriers, scalars), gloo alone on the CPU."""
    return "cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo"


def backend_devices(group=None) -> set[str]:
    """Device types the process group has a backend for (``cpu:gloo,cuda:nccl`` → {cpu, cuda})."""
    import torch.distributed as dist

    config = str(dist.get_backend_config(group))
    if ":" not in config:  # a plain backend name: gloo serves both, NCCL only CUDA
        return {"cuda"} if config == "nccl" else {"cpu", "cuda"}
    return {part.split(":")[0] for part in config.split(",")}


def all_reduce(tensor, group=None) -> None:
    """Sum ``tensor`` over the ranks, in place; a tensor on a device the group has no backend for is
    refused with its device named (NCCL's own error only says a backend is missing)."""
    import torch.distributed as dist

    devices = backend_devices(group)
    if tensor.device.type not in devices:
        raise ValueError(
            f"a {tensor.device.type} tensor in a collective of a group with backends for {sorted(devices)} "
            f"only ({dist.get_backend_config(group)}): create it on the training device"
        )
    dist.all_reduce(tensor, group=group)


_WAIT_GROUP: list = []  # [(default group, its gloo group for waits)], made on the first wait


def wait_for_ranks(timeout: timedelta) -> None:
    """Wait until every rank of the default process group gets here, for up to ``timeout`` (then raise,
    naming the ranks that did not come). A gloo barrier on a group of its own, whatever the default
    group's backend and timeout (NCCL: 10 minutes), so a rank may wait hours for a slower one. Every
    rank calls it at the same points (the first call creates the group, collectively, with the same
    timeout)."""
    import torch.distributed as dist

    world = dist.group.WORLD
    if not _WAIT_GROUP or _WAIT_GROUP[0][0] is not world:
        _WAIT_GROUP[:] = [(world, dist.new_group(backend="gloo", timeout=timeout))]
    try:
        dist.monitored_barrier(_WAIT_GROUP[0][1], timeout=timeout, wait_all_ranks=True)
    except RuntimeError as exc:  # gloo names the missing ranks
        raise TimeoutError(f"not every rank came within {timeout}: {exc}") from exc
