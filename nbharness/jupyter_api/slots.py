"""A cap on kernels per server, shared by every process of this user on this machine
(xdist workers).

``count`` lock files per server; a run holds one while its kernel lives, with its pid
written inside so that a run left waiting can say who holds them. Locks held with
``flock`` go away with the process that held them, so a killed worker never keeps a slot.
The files live in a folder only this user can enter (``$XDG_RUNTIME_DIR``, else a
per-user folder in the temp dir): another user could otherwise hold every slot.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import time
from pathlib import Path

from ..errors import NbHarnessError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cap, every run goes ahead
    fcntl = None  # type: ignore[assignment]

WAIT_S = 0.05


class NoFreeSlot(NbHarnessError):
    """No kernel slot came free in time, or the slots' folder is not safe to use."""


class KernelSlots:
    def __init__(self, server_url: str, count: int) -> None:
        self.key = hashlib.sha256(server_url.encode()).hexdigest()[:16]
        self.count = count

    @property
    def folder(self) -> Path:
        """This user's folder for the server's slots (``$XDG_RUNTIME_DIR`` when set)."""
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime and Path(runtime).is_dir():
            return Path(runtime) / f"nbharness-slots-{self.key}"
        return Path(tempfile.gettempdir()) / f"nbharness-{os.getuid()}" / f"slots-{self.key}"

    def acquire(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for a free slot: its file descriptor, to give back to
        ``release``; ``NoFreeSlot`` saying who holds them when none came free."""
        if fcntl is None:
            return None
        folder = self.folder
        _private(folder.parent)
        _private(folder)
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self.count):
                fd = os.open(folder / f"{index}.lock", os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd
            if time.monotonic() > deadline:
                raise NoFreeSlot(
                    f"no kernel slot came free within {timeout:g} s: all {self.count} are "
                    f"held ({self.holders()})"
                )
            time.sleep(WAIT_S)

    def holders(self) -> str:
        """Who holds the slots, as far as their files say."""
        pids = []
        for index in range(self.count):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int((self.folder / f"{index}.lock").read_text()))
        return f"by pid {', '.join(map(str, sorted(set(pids))))}" if pids else "holders unknown"

    @staticmethod
    def release(fd: int | None) -> None:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing drops the lock


def _private(folder: Path) -> None:
    """Make ``folder`` (mode 0700), or check that it is this user's own and private."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise NoFreeSlot(
            f"{folder}: not a private folder of yours (owner uid {info.st_uid}, mode "
            f"{stat.filemode(info.st_mode)}): refusing to keep kernel slots there; remove it, "
            "or set $XDG_RUNTIME_DIR"
        )
