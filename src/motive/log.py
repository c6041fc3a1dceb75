"""The ``motive`` logger and ``stage``: what a long command is doing, and how long each part took.

Library code logs to ``logging.getLogger("motive")`` and never configures handlers; the command line
does (``-v`` for debug detail, ``-q`` for warnings only). Slow steps — loading a model, fingerprinting
it, building projection tables, encoding prompts — are wrapped in ``stage`` so a user sees them start
and end instead of a silent terminal.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger("motive")


def peak_host_gib() -> float:
    """This process's peak resident memory so far, GiB: Linux's VmHWM (its own, unlike ``ru_maxrss``,
    which a process started by fork + exec inherits from its parent), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


@contextmanager
def stage(what: str, level: int = logging.INFO) -> Iterator[None]:
    """Log ``what…`` on entry and ``what: done in T s`` on exit (at ``level``)."""
    logger.log(level, "%s…", what)
    start = time.perf_counter()
    yield
    logger.log(level, "%s: done in %.1f s", what, time.perf_counter() - start)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a caller may have replaced it since)."""

    @property
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure(verbosity: int) -> None:
    """Command-line logging: -1 = warnings only, 0 = info (default), 1 = debug. One stderr handler."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("motive: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
