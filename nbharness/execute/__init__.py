"""The executor interface: a *run* in, an executed notebook and its outcome out.

Every backend (a local kernel, a remote server's kernel, a third-party one) implements
``Executor`` and is built by ``make_executor``; the pytest items, papermill's engine and
the remote session's probe only ever talk to this interface. Executors know nothing of
pytest. They are context managers because some backends hold a session (a hub login,
a kernel pool) across runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..errors import NbHarnessError

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from ..jupyter_api.rest import Server

ENTRY_POINT_GROUP = "nbharness.executors"
#: Forking kernels from a fork server needs fork(), SCM_RIGHTS and SOCK_SEQPACKET: Linux.
FORK_AVAILABLE = sys.platform == "linux"
#: How local kernels start: "fork" (from a warm fork server) or "process".
LAUNCHERS = ("fork", "process")
#: pytest's and papermill's launcher (a ``Run`` built by hand starts a process).
DEFAULT_LAUNCHER = "fork" if FORK_AVAILABLE else "process"
#: Per-cell limit when none is set: long enough for real analysis cells, short enough
#: that a hung cell does not eat a CI job (nbmake uses the same figure).
DEFAULT_CELL_TIMEOUT = 300.0
#: jupyter_client's own default for a kernel to start and answer.
DEFAULT_STARTUP_TIMEOUT = 60.0
#: Characters of output one cell keeps by default: the first 1 MB and the last 1 MB. The
#: report's "Captured stdout" shows what the cell kept.
DEFAULT_OUTPUT_LIMIT = 2_000_000


@dataclass(frozen=True)
class Run:
    """One execution of one notebook."""

    path: Path
    notebook: NotebookNode
    cwd: Path
    cell_timeout: float
    #: The kernel to use whatever the notebook says; ``None`` means the notebook's own.
    kernel: str | None = None
    #: Where ``kernel`` was set, for the report: "--nb-kernel", "nb_kernel", ...
    kernel_source: str = "--nb-kernel"
    #: How a local kernel starts: "fork" (from a warm fork server) or "process".
    launcher: str = "process"
    #: Environment variables for the kernel, over this process's environment.
    env: Mapping[str, str] = field(default_factory=dict)
    #: Errors in cells do not stop the run or fail it (nbmake's ``allow_errors``).
    allow_errors: bool = False
    #: A cell over its time limit is interrupted and the run goes on (dependency checks).
    interrupt_on_timeout: bool = False
    #: Where ``cell_timeout`` was set, for the report: "--nb-timeout", "nb_timeout", ...
    cell_timeout_source: str = "--nb-timeout"
    #: A limit on the whole notebook, start-up excluded; ``None``: no limit.
    notebook_timeout: float | None = None
    notebook_timeout_source: str = "--nb-notebook-timeout"
    #: Code run silently in the kernel before the first cell and after the last
    #: (coverage start and save); never shown in the executed notebook.
    prologue: str = ""
    epilogue: str = ""
    #: How long the kernel may take to start and answer.
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    startup_timeout_source: str = "--nb-startup-timeout"
    #: Characters of output each cell keeps: the first and the last half of it, with a
    #: line saying how much was dropped between them.
    output_limit: int = DEFAULT_OUTPUT_LIMIT


@dataclass
class RunResult:
    """What came of a run. ``error`` is ``None`` when the notebook passed."""

    notebook: NotebookNode
    error: NbHarnessError | None = None
    #: The notebook ended itself early with ``sys.exit(0)`` (a pass, as in papermill).
    exited_early: bool = False
    #: 0-based indexes of cells tagged ``raises-exception`` that raised nothing.
    unraised: list[int] = field(default_factory=list)
    #: Things worth a warning about a run that stands (output a server dropped, say).
    warnings: list[str] = field(default_factory=list)


_Self = TypeVar("_Self", bound="ClosesOnExit")


class ClosesOnExit:
    """A context manager that calls ``close()`` on the way out."""

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class CellObserver(Protocol):
    """Follows a run cell by cell (papermill's progress bar and autosave use it)."""

    def cell_started(self, index: int, cell: NotebookNode) -> None: ...

    def cell_finished(self, index: int, cell: NotebookNode) -> None: ...


class LiveRun(Protocol):
    """A finished run whose kernel is still up: the ``notebook`` fixture asks it questions."""

    result: RunResult

    def run_code(self, code: str) -> NotebookNode:
        """Run ``code`` in the kernel: the executed cell, or raise the ``NbHarnessError``."""
        ...

    def close(self) -> None:
        """Stop the kernel and everything it started."""
        ...


class Executor(Protocol):
    def __enter__(self) -> Executor: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def execute(self, run: Run, observer: CellObserver | None = None) -> RunResult:
        """Run the notebook top to bottom on a fresh kernel; never share kernels."""
        ...

    def open(self, run: Run, observer: CellObserver | None = None) -> LiveRun:
        """Like ``execute``, but the kernel stays up until the ``LiveRun`` is closed."""
        ...


@dataclass(frozen=True)
class ExecutorSettings:
    """What an executor is built from: plain data, so that building one needs neither
    pytest nor the session's ``Settings`` (papermill's engine has neither)."""

    #: The Jupyter server remote kernels run on; ``None``: the one the ``NBHARNESS_*``
    #: environment names (papermill's way).
    server: Server | None = None
    #: The remote kernels' working directory, relative to the server's root.
    remote_cwd: str | None = None
    #: At most this many kernels at once on the server (``--nb-max-kernels``).
    max_kernels: int | None = None
    #: Where ``max_kernels`` was set, for a wait for a slot that ran out.
    max_kernels_source: str = "--nb-max-kernels"
    #: Start the next run's remote kernel while a notebook runs; off for a one-off probe.
    spare: bool = True


#: Builds an executor from its settings: a built-in or an ``nbharness.executors`` entry point.
ExecutorFactory = Callable[[ExecutorSettings], Executor]


def _local(settings: ExecutorSettings) -> Executor:
    from .local import LocalExecutor

    return LocalExecutor()


def _remote(settings: ExecutorSettings) -> Executor:
    from ..jupyter_api.gateway import Gateway
    from .remote import RemoteExecutor

    if isinstance(settings.server, Gateway):
        return _gateway(settings)
    return RemoteExecutor.from_settings(settings)


def _gateway(settings: ExecutorSettings) -> Executor:
    from .gateway import GatewayExecutor

    return GatewayExecutor.from_settings(settings)


#: Built-in executors, each importing its backend only when asked for. A remote one on a
#: gateway is the gateway's.
BUILTIN: dict[str, ExecutorFactory] = {"local": _local, "remote": _remote, "gateway": _gateway}


def make_executor(name: str, settings: ExecutorSettings | None = None) -> Executor:
    """A new executor by name: built-ins first, then the ``nbharness.executors`` entry
    points (read on lookup, never at import), each called with ``settings``."""
    settings = settings or ExecutorSettings()
    if name in BUILTIN:
        return BUILTIN[name](settings)
    from importlib.metadata import entry_points  # 45 ms to import: the CLI never needs it

    plugins = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name in plugins:
        factory: ExecutorFactory = plugins[name].load()
        return factory(settings)
    known = ", ".join(sorted({*BUILTIN, *plugins}))
    raise NbHarnessError(f"unknown executor {name!r} (known: {known})")
