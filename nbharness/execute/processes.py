"""The processes behind a local kernel: how one ended, what it said, and ending them all.

Each exists once here. The fork server (``forkserver/server.py``) imports nothing of
nbharness and keeps its own small copies of the kill rules, on its side of the socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import IO

#: How much of a log's end is read for its last lines.
TAIL_BYTES = 64_000


def exit_description(code: int | None) -> str:
    """How a process ended, from its return code (negative: the signal that killed it)."""
    if code is None or code == 0:
        return ""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


def log_tail(log: IO[str], lines: int = 1, noise: tuple[str, ...] = ()) -> str:
    """The last ``lines`` non-blank lines of a log file, without lines holding ``noise``."""
    log.flush()
    size = log.seek(0, os.SEEK_END)
    log.seek(max(size - TAIL_BYTES, 0))
    text = [
        line
        for line in log.read().splitlines()
        if line.strip() and not any(word in line for word in noise)
    ]
    return "\n".join(text[-lines:])


def kill_group(group: int) -> None:
    """SIGKILL a process group; an empty one is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
