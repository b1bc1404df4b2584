"""A kernel started as a process, kept on a leash: ``python reaper.py KERNEL-COMMAND...``.

Run as a script (Linux), in the process group jupyter_client made for the kernel: it
becomes a child subreaper and runs the kernel as its child, which dies with it
(PR_SET_PDEATHSIG). What the kernel's children leave behind is adopted here. When the
kernel ends, or pytest goes away without ending it (a SIGKILL of its process group),
everything carrying the kernel's tag and everything left under the reaper is killed,
and the kernel's socket folder removed; then the reaper ends as the kernel did, so its
exit code is the kernel's.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import (
        KERNEL_TAG,
        PR_SET_CHILD_SUBREAPER,
        PR_SET_PDEATHSIG,
        kill_adopted,
        kill_tagged,
        prctl,
        remove_sockets,
        socket_folder,
    )
else:  # run as a script, beside server.py
    from server import (
        KERNEL_TAG,
        PR_SET_CHILD_SUBREAPER,
        PR_SET_PDEATHSIG,
        kill_adopted,
        kill_tagged,
        prctl,
        remove_sockets,
        socket_folder,
    )

#: How often the reaper looks whether its parent is still there.
PARENT_CHECK_S = 0.1


def main(argv: list[str]) -> None:
    parent = os.getppid()
    folder = socket_folder(argv)  # read now: pytest removes the connection file at the end
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    # Interrupts and terminations go to the whole group: they are the kernel's to answer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Held, so that waiting for it wakes the moment the kernel ends (see wait_for).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    kernel = os.fork()
    if kernel == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.environ["JPY_PARENT_PID"] = str(os.getppid())  # ipykernel polls its parent: us
        os.execvp(argv[0], argv)
    status = wait_for(kernel, parent)
    if status is None:
        # pytest is gone: the kernel ends first, so that what it started (in a session of
        # its own, or with no environment to carry the tag) is reparented to us below.
        os.kill(kernel, signal.SIGKILL)
        os.waitpid(kernel, 0)
    kill_tagged({os.environ.get(KERNEL_TAG, "")})
    kill_adopted()
    if folder:
        remove_sockets(folder)
    end_as(status)


def wait_for(kernel: int, parent: int) -> int | None:
    """The kernel's wait status, or ``None`` if the parent went first: woken by the
    kernel's SIGCHLD at once, or every ``PARENT_CHECK_S`` to look at the parent."""
    while True:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == kernel:
            return status
        if pid == 0:
            if os.getppid() != parent:
                return None
            signal.sigtimedwait({signal.SIGCHLD}, PARENT_CHECK_S)


def end_as(status: int | None) -> None:
    """Exit as the kernel did (by the same signal, or with the same code)."""
    if status is None:
        os.killpg(0, signal.SIGKILL)  # the kernel's own children, and the reaper
    code = os.waitstatus_to_exitcode(status or 0)
    if code < 0:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the kernel's crash, not ours
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # these two take no handler
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
