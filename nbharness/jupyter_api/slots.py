"""A cap on kernels per server, shared by every process on this machine (xdist workers).

``count`` lock files per server; a run holds one while its kernel lives. Locks held
with ``flock`` go away with the process that held them, so a killed worker never keeps
a slot.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cap, every run goes ahead
    fcntl = None  # type: ignore[assignment]

WAIT_S = 0.05


class KernelSlots:
    def __init__(self, server_url: str, count: int) -> None:
        key = hashlib.sha256(server_url.encode()).hexdigest()[:16]
        self.folder = Path(tempfile.gettempdir()) / f"nbharness-slots-{key}"
        self.count = count

    def acquire(self) -> int | None:
        """Wait for a free slot; its file descriptor, to give back to ``release``."""
        if fcntl is None:
            return None
        self.folder.mkdir(exist_ok=True)
        while True:
            for index in range(self.count):
                fd = os.open(self.folder / f"{index}.lock", os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                return fd
            time.sleep(WAIT_S)

    @staticmethod
    def release(fd: int | None) -> None:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing drops the lock
