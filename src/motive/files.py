"""Writing files so that a crash never leaves a half-written one under the final name.

Every output that a later run trusts by its presence (a store's shards and meta, cached inputs, a
clip's ``stats.json``, a dataset's ``metadata.csv``) is written to a temporary name beside it and
renamed into place; ``os.replace`` is atomic on one file system.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so writers that sniff it still work); renamed
    onto ``path`` when the block ends without an error, removed otherwise."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
