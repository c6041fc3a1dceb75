"""Which files in a folder a piece of code opened, seen by the kernel (inotify), so reads done by C
libraries such as FFmpeg count too. Linux only."""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

IN_OPEN = 0x20


class OpenAudit:
    """Watches ``folder`` from creation; ``opened()`` names the files in it opened since."""

    def __init__(self, folder: str | Path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, str(folder).encode(), IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {folder}")

    def opened(self) -> list[str]:
        names = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return names
            i = 0
            while i < len(buf):
                _, _, _, length = struct.unpack_from("iIII", buf, i)
                names.append(buf[i + 16 : i + 16 + length].rstrip(b"\0").decode())
                i += 16 + length

    def close(self) -> None:
        os.close(self.fd)


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` in the process tree (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def survivors_of_kill(proc, pids, seconds: float = 15) -> list[int]:
    """SIGKILL ``proc`` (a ``subprocess.Popen``), wait up to ``seconds`` for ``pids`` to end, then kill
    and return the ones still running (the test fails on them; nothing is left behind either way)."""
    import signal
    import time

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + seconds
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    left = [p for p in pids if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return left


def run_ranks(target, args: tuple, world: int = 2, timeout: float = 300) -> None:
    """``target(rank, *args)`` in ``world`` fresh (spawned) processes at once, as ranks of a process
    group; waits up to ``timeout`` s for each and kills any still running."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(r, *args)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=timeout)
        if p.is_alive():
            p.kill()
