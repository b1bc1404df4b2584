"""The default backend: a fresh kernel per run on this machine, killed when done."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager

from ..errors import KernelDied, KernelNotFound, KernelStartFailed, NbHarnessError
from . import CellObserver, Closing, InterruptOnTerm, Run, RunResult
from .forkserver.client import ZygotePool
from .launch import KernelManager
from .processes import exit_description, log_tail
from .session import KernelRun

#: Lines every ipykernel 7 prints at start; they only hide what a dying kernel said.
KERNEL_NOISE = ("Kernel is running over TCP without encryption",)


class LocalExecutor(Closing):
    """Runs each notebook on a new local kernel.

    Kernels are forked from the executor's fork servers when the run asks for the
    "fork" launcher; the fork servers end with the executor.
    """

    def __init__(self) -> None:
        self.zygotes = ZygotePool()
        self._term = InterruptOnTerm()

    def __enter__(self) -> LocalExecutor:
        self._term.__enter__()
        return self

    def close(self) -> None:
        self.zygotes.close()
        self._term.__exit__()

    def execute(self, run: Run, observer: CellObserver | None = None) -> RunResult:
        with self.open(run, observer) as live:
            return live.result

    def open(self, run: Run, observer: CellObserver | None = None) -> LocalRun:
        return LocalRun(run, observer, self.zygotes if run.launcher == "fork" else None)


class LocalRun(KernelRun):
    """A run on a local kernel process, whose output is kept for the report."""

    def __init__(
        self, run: Run, observer: CellObserver | None = None, zygotes: ZygotePool | None = None
    ) -> None:
        self.zygotes = zygotes
        # The kernel process's own stdout/stderr: what a dying kernel said. Closed in close().
        self.log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        super().__init__(run, observer)
        if self.client is None:
            self.log.close()

    def kernel_missing(self, name: str) -> NbHarnessError | None:
        """A kernel not installed, or a working folder that is not there (a kernel started
        in it would only die before answering)."""
        if not self.run.cwd.is_dir():
            return KernelStartFailed(
                f"kernel {name!r} could not start: its working folder {self.run.cwd} "
                "does not exist (see --nb-cwd)"
            )
        installed = list(KernelSpecManager().find_kernel_specs())
        if name in installed:
            return None
        return KernelNotFound(name, installed, source=self.kernel_source)

    def manager(self, name: str) -> KernelManager:
        km = KernelManager(kernel_name=name)
        km.zygotes = self.zygotes
        return km

    def start_options(self) -> dict[str, Any]:
        return {"stdout": self.log, "stderr": self.log, "env": {**os.environ, **self.run.env}}

    def death(self) -> tuple[str, str]:
        assert isinstance(self.km, KernelManager)
        trouble = self.km.fork_server_trouble()
        how = f"its fork server {trouble}" if trouble else exit_description(self.km.exit_code())
        return how, log_tail(self.log, lines=20, noise=KERNEL_NOISE)

    def start_said(self) -> str:
        return log_tail(self.log, noise=KERNEL_NOISE) or "it printed nothing"

    def notes(self) -> list[str]:
        return self._fork_server_blame()

    def _fork_server_blame(self) -> list[str]:
        """A warning for a run during which the fork server broke (unless the kernel's
        death says so already). Asked again when the kernel is stopped: a fork server
        killed by the last cell may die a moment after the run ends."""
        assert isinstance(self.km, KernelManager)
        trouble = self.km.fork_server_trouble()
        note = (
            f"the fork server this notebook's kernel was forked from {trouble} during the "
            "run (a cell signalled its parent process); the next notebook gets a new one"
        )
        result = getattr(self, "result", None)
        if not trouble or result is None or isinstance(result.error, KernelDied):
            return []
        return [] if note in result.warnings else [note]

    async def stop_kernel(self) -> None:
        assert self.client is not None
        assert isinstance(self.km, KernelManager)
        try:
            self.km.kill()
            if hasattr(self, "result"):
                self.result.warnings.extend(self._fork_server_blame())
        finally:
            await self.km.cleanup_resources()
            if self.client.kc is not None:
                self.client.kc.stop_channels()
            self.log.close()
