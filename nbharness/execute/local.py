"""The default backend: a fresh kernel per run on this machine, killed when done."""

from __future__ import annotations

import os
import tempfile
from typing import IO, Any

from jupyter_client.client import KernelClient
from jupyter_client.kernelspec import KernelSpecManager

from ..errors import KernelDied, KernelNotFound, KernelStartFailed, NbHarnessError
from . import CellObserver, ClosesOnExit, Run, RunResult
from .forkserver.client import ForkServerPool
from .forkserver.preload import modules_to_preload
from .launch import KernelManager
from .processes import exit_description, log_tail
from .session import KernelSession
from .signals import InterruptOnTerm

#: Lines every ipykernel 7 prints at start; they only hide what a dying kernel said.
KERNEL_NOISE = ("Kernel is running over TCP without encryption",)


class LocalExecutor(ClosesOnExit):
    """Runs each notebook on a new local kernel.

    Kernels are forked from the executor's fork servers when the run asks for the
    "fork" launcher; the fork servers end with the executor.
    """

    def __init__(self) -> None:
        self.fork_servers = ForkServerPool()
        #: Kernels found installed: each run need not scan the kernel folders again.
        self.installed_kernels: set[str] = set()
        self._term = InterruptOnTerm()

    def __enter__(self) -> LocalExecutor:
        self._term.__enter__()
        return self

    def close(self) -> None:
        self.fork_servers.close()
        self._term.__exit__()

    def execute(self, run: Run, observer: CellObserver | None = None) -> RunResult:
        with self.open(run, observer) as live:
            return live.result

    def open(self, run: Run, observer: CellObserver | None = None) -> KernelSession:
        fork_servers = self.fork_servers if run.launcher == "fork" else None
        session = KernelSession(run, LocalKernel(fork_servers, self.installed_kernels), observer)
        session.execute()
        return session


class LocalKernel:
    """A kernel process on this machine (a ``KernelBackend``), whose own output is kept
    for the report of its death."""

    def __init__(
        self, fork_servers: ForkServerPool | None = None, installed: set[str] | None = None
    ) -> None:
        self.fork_servers = fork_servers
        #: Kernel names known to be installed (shared by the executor's runs).
        self.installed = set() if installed is None else installed
        self.km: KernelManager | None = None
        #: The kernel process's own stdout/stderr: opened with the manager, closed in ``stop``.
        self.log: IO[str] | None = None

    def missing(self, run: Run, name: str, source: str) -> NbHarnessError | None:
        """A kernel not installed, or a working folder that is not there (a kernel started
        in it would only die before answering)."""
        if not run.cwd.is_dir():
            return KernelStartFailed(
                f"kernel {name!r} could not start: its working folder {run.cwd} "
                "does not exist (see --nb-cwd)"
            )
        if name in self.installed:
            return None
        installed = list(KernelSpecManager().find_kernel_specs())
        if name in installed:
            self.installed.add(name)
            return None
        return KernelNotFound(name, installed, source=source)

    def manager(self, run: Run, name: str) -> KernelManager:
        self.km = KernelManager(kernel_name=name)
        self.km.fork_servers = self.fork_servers
        if self.fork_servers is not None:
            self.km.warm = modules_to_preload(run.notebook.cells, run.path)
        self.log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        return self.km

    def start_options(self, run: Run) -> dict[str, Any]:
        return {"stdout": self.log, "stderr": self.log, "env": {**os.environ, **run.env}}

    def death(self, starting: bool) -> tuple[str, str]:
        assert self.km is not None
        assert self.log is not None
        if starting:
            return "", log_tail(self.log, noise=KERNEL_NOISE) or "it printed nothing"
        trouble = self.km.fork_server_trouble()
        how = f"its fork server {trouble}" if trouble else exit_description(self.km.exit_code())
        return how, log_tail(self.log, lines=20, noise=KERNEL_NOISE)

    def timed_out(self) -> None:
        """Nothing to do: the kernel is killed when the session ends."""

    def warnings(self, result: RunResult) -> list[str]:
        """A warning for a run during which the fork server broke (unless the kernel's
        death says so already). Asked again when the kernel is stopped: a fork server
        killed by the last cell may die a moment after the run ends."""
        trouble = self.km.fork_server_trouble() if self.km is not None else ""
        if not trouble or isinstance(result.error, KernelDied):
            return []
        return [
            f"the fork server this notebook's kernel was forked from {trouble} during the "
            "run (a cell signalled its parent process); the next notebook gets a new one"
        ]

    async def stop(self, kc: KernelClient | None) -> None:
        assert self.km is not None
        try:
            self.km.kill()
        finally:
            await self.km.cleanup_resources()
            if kc is not None:
                kc.stop_channels()
            if self.log is not None:
                self.log.close()
