"""The default backend: a fresh local kernel per run, driven by nbclient.

nbclient runs the cells; we only watch it through its hooks (which cell started, which
one finished) and translate how it stopped into an ``NbHarnessError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
import signal
import tempfile
import warnings
from types import TracebackType
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from ..errors import (
    CellError,
    CellTimeout,
    KernelDied,
    KernelNotFound,
    KernelStartFailed,
    NbHarnessError,
)
from ..notebook import RAISES_TAG, SKIP_TAG, cell_tags, kernel_name
from . import CellObserver, Run, RunResult
from .launch import KernelManager

#: The kernel for notebooks that name none: the one ipykernel installs.
DEFAULT_KERNEL = "python3"
#: Lines every ipykernel 7 prints at start; they only hide what a dying kernel said.
KERNEL_NOISE = ("Kernel is running over TCP without encryption",)
#: nbclient logs a kernel death at ERROR level; we report it ourselves, once.
_QUIET_LOG = logging.getLogger("nbharness.nbclient")
_QUIET_LOG.disabled = True
#: ``sys.exit(code)`` values that mean "stop here, all is well" (papermill's rule).
CLEAN_EXIT_VALUES = {"", "0", "None", "False"}


class LocalExecutor:
    """Runs each notebook on a new kernel process on this machine, killed when done."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def execute(self, run: Run, observer: CellObserver | None = None) -> RunResult:
        nb = _cleared(run.notebook)
        name = run.kernel or kernel_name(nb) or DEFAULT_KERNEL
        installed = list(KernelSpecManager().find_kernel_specs())
        if name not in installed:
            return RunResult(nb, KernelNotFound(name, installed))
        watch = _CellWatch(nb, observer)
        km = KernelManager(kernel_name=name)
        client = NotebookClient(
            nb,
            km=km,
            timeout_func=lambda cell: run.cell_timeout,  # the ``timeout`` trait takes ints only
            kernel_name=name,
            resources={"metadata": {"path": str(run.cwd)}},
            skip_cells_with_tag=SKIP_TAG,
            # The notebook is done with: nothing in the kernel is worth a graceful exit,
            # and SIGKILL to the kernel's process group also ends what it started.
            shutdown_kernel="immediate",
            on_notebook_start=watch.kernel_ready,
            on_cell_start=watch.started,
            on_cell_executed=watch.executed,
            on_cell_error=watch.failed,
            log=_QUIET_LOG,
        )
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
            error = _run(client, watch, log, run.cell_timeout)
        if isinstance(error, KernelDied):
            error = dataclasses.replace(error, how=_exit_description(km.exit_code))
        if _is_clean_exit(error):
            return RunResult(nb, exited_early=True, unraised=watch.unraised)
        return RunResult(nb, error, unraised=watch.unraised)


def _is_clean_exit(error: NbHarnessError | None) -> bool:
    return (
        isinstance(error, CellError)
        and error.ename == "SystemExit"
        and error.evalue in CLEAN_EXIT_VALUES
    )


def _run(
    client: NotebookClient, watch: _CellWatch, log: Any, timeout: float
) -> NbHarnessError | None:
    """Execute, and say how it ended. ``log`` collects the kernel process's own output."""
    try:
        with warnings.catch_warnings():
            # Deprecations inside jupyter_client/zmq are not the user's to fix, and a
            # project's ``filterwarnings = error`` must not turn them into failures.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            # We made the kernel manager, but nbclient is still to clean it up.
            client.execute(cleanup_kc=True, stdout=log, stderr=log)
    except BaseException as exc:
        if watch.interrupted:
            raise KeyboardInterrupt from None
        return _explain(exc, client, watch, log, timeout)
    return None


def _exit_description(code: int | None) -> str:
    if code is None or code == 0:
        return ""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


def _explain(
    exc: BaseException, client: NotebookClient, watch: _CellWatch, log: Any, timeout: float
) -> NbHarnessError:
    """The error to report for how nbclient stopped; anything unforeseen is re-raised."""
    if isinstance(exc, CellExecutionError):
        return watch.error()
    if isinstance(exc, CellTimeoutError):
        return CellTimeout(**watch.where(), timeout=timeout)
    if isinstance(exc, DeadKernelError) and watch.index is not None:
        return KernelDied(**watch.where(), stderr=_tail(log, lines=20))
    if isinstance(exc, DeadKernelError):
        said = _tail(log) or "it printed nothing"
        return KernelStartFailed(f"kernel {client.kernel_name!r} died during start-up: {said}")
    if isinstance(exc, Exception) and watch.index is None:
        # A kernel that cannot start fails in many library-specific ways.
        reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        return KernelStartFailed(f"kernel {client.kernel_name!r} could not start: {reason}")
    raise exc


class _CellWatch:
    """Follows nbclient's progress through its hooks."""

    def __init__(self, nb: NotebookNode, observer: CellObserver | None) -> None:
        self.nb = nb
        self.observer = observer
        self.index: int | None = None
        self.unraised: list[int] = []
        self.interrupted = False
        #: The failing cell's execute_reply content: the error when the kernel sent no
        #: error output (IPython's UsageError for an unknown magic, say).
        self.reply: dict[str, Any] = {}

    def kernel_ready(self, notebook: NotebookNode) -> None:
        """Make Ctrl-C stop the run, and pytest with it, not just the kernel.

        nbclient answers SIGINT by killing the kernel and carrying on, so the notebook
        would fail oddly and pytest would start the next one. Once the kernel is up we
        take SIGINT back: cancel the run (nbclient's cleanup still kills the kernel),
        and ``_run`` turns that into KeyboardInterrupt.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def interrupt() -> None:
            self.interrupted = True
            if task is not None:
                task.cancel()

        with contextlib.suppress(RuntimeError, ValueError):  # not in the main thread
            loop.add_signal_handler(signal.SIGINT, interrupt)

    def started(self, cell: NotebookNode, cell_index: int) -> None:
        self.index = cell_index
        if self.observer is not None:
            self.observer.cell_started(cell_index, cell)

    def failed(self, cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
        self.reply = execute_reply.get("content", {})
        if self.observer is not None:
            self.observer.cell_finished(cell_index, cell)

    def executed(self, cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
        ok = execute_reply.get("content", {}).get("status") == "ok"
        if ok and RAISES_TAG in cell_tags(cell):
            self.unraised.append(cell_index)
        if self.observer is not None:
            self.observer.cell_finished(cell_index, cell)

    def where(self) -> dict[str, Any]:
        assert self.index is not None
        cell = self.nb.cells[self.index]
        return {
            "index": self.index,
            "source": cell.source,
            "execution_count": cell.get("execution_count"),
        }

    def error(self) -> CellError:
        cell = self.nb.cells[self.where()["index"]]
        found = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        out = found[-1] if found else self.reply
        return CellError(
            **self.where(),
            ename=out.get("ename", "Error"),
            evalue=out.get("evalue", ""),
            traceback=list(out.get("traceback", [])),
        )


def _cleared(nb: NotebookNode) -> NotebookNode:
    """A copy without stored outputs, so the executed notebook shows only this run."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def _tail(log: Any, lines: int = 1) -> str:
    log.flush()
    log.seek(0)
    text = [
        line
        for line in log.read().splitlines()
        if line.strip() and not any(noise in line for noise in KERNEL_NOISE)
    ]
    return "\n".join(text[-lines:])
