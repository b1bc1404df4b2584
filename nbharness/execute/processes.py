"""The processes behind a local kernel: how one ended, what it said, and ending them all.

Each exists once here. The fork server (``forkserver/server.py``) imports nothing of
nbharness and keeps its own small copies of the kill rules, on its side of the socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

#: The variable that marks every process a kernel starts (it is inherited, even across
#: ``setsid``), so that a kernel's escaped descendants can be found and ended.
KERNEL_TAG = "NBHARNESS_KERNEL"
#: How much of a log's end is read for its last lines.
TAIL_BYTES = 64_000
#: How long a kernel's reaper may take to clear up after the kernel before its group is
#: killed with it (it kills what it finds at once: milliseconds).
REAPER_GRACE_S = 5.0


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


def end_under_reaper(reaper: subprocess.Popen[bytes], grace: float = REAPER_GRACE_S) -> None:
    """End a kernel started under ``forkserver/reaper.py`` (which leads the kernel's
    group) so that the reaper outlives it: SIGKILL every other process of the group, then
    let the reaper kill what the kernel left under it (orphans in a new session, with no
    environment to carry the tag) and exit, before the group is cleared."""
    for pid in _members(reaper.pid):
        if pid != reaper.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        reaper.wait(timeout=grace)
    kill_group(reaper.pid)


def _members(group: int) -> list[int]:
    """The live processes of a process group (Linux: read from /proc)."""
    members = []
    for pid in _proc_pids():
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == group:
                members.append(pid)
    return members


def kill_tagged(tag: str, grace: float = 2.0) -> None:
    """SIGKILL every process whose environment says ``KERNEL_TAG=tag`` (what a kernel
    started in a new session or after a double fork), until none is left. Linux only:
    elsewhere, nothing to find."""
    deadline = time.monotonic() + grace
    while (found := tagged(tag)) and time.monotonic() < deadline:
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def tagged(tag: str) -> list[int]:
    """The live processes marked with ``tag`` (zombies have no environment to read)."""
    marker = f"{KERNEL_TAG}={tag}".encode()
    found = []
    for entry in _proc_pids():
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found.append(entry)
    return found


def state(pid: int) -> str:
    """The process's state letter from /proc (``T``: stopped, ``Z``: zombie), or ``""``."""
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0]
    return ""


def _proc_pids() -> list[int]:
    with contextlib.suppress(OSError):
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return []
