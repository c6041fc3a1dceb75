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
