"""How a local kernel comes to life and, above all, how everything it started ends."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

from jupyter_client.manager import AsyncKernelManager


class KernelManager(AsyncKernelManager):
    """jupyter_client's manager, plus one rule: nothing the kernel started outlives the run.

    jupyter_client kills the kernel's process group only while the kernel is alive, so
    the children of a kernel that died (``os._exit``, a segfault) would be orphaned.
    We remember the group when the kernel starts and kill it whenever resources are
    cleaned up, dead kernel or not.
    """

    _process_group: int | None = None

    async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
        await super().start_kernel(**kwargs)
        self._process_group = getattr(self.provisioner, "pgid", None)

    def exit_code(self) -> int | None:
        """The kernel process's return code (negative: the signal that killed it), if it ended."""
        process = getattr(self.provisioner, "process", None)
        return None if process is None else process.poll()

    async def cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        group, self._process_group = self._process_group, None
        if group is not None and hasattr(os, "killpg"):
            with contextlib.suppress(ProcessLookupError, PermissionError):  # already empty
                os.killpg(group, signal.SIGKILL)
        await super().cleanup_resources(restart=restart)
