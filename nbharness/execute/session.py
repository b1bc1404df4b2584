"""A run driven by nbclient on any kernel manager: the part every backend shares.

nbclient runs the cells; we only watch it through its hooks (which cell started, which
one finished) and translate how it stopped into an ``NbHarnessError``. Backends say how
their kernels are found, started, described when they die, and stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import time
import warnings
from collections.abc import Callable
from typing import Any, Protocol

from jupyter_client.client import KernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

from ..errors import (
    CellError,
    CellTimeout,
    KernelDied,
    KernelStartFailed,
    NbHarnessError,
)
from ..notebook.cellmarks import RAISES, with_executor_tags
from ..notebook.io import SKIP_TAG, cell_timeout, kernel_name
from . import CellObserver, Run, RunResult
from .launch import NoAnswer
from .output_limit import CappedClient
from .signals import cancel_on_interrupt, sigterm_kept

#: The kernel for notebooks that name none: the one ipykernel installs.
DEFAULT_KERNEL = "python3"
#: nbclient logs a kernel death at ERROR level; we report it ourselves, once.
_QUIET_LOG = logging.getLogger("nbharness.nbclient")
_QUIET_LOG.disabled = True
#: ``sys.exit(code)`` values that mean "stop here, all is well" (papermill's rule).
CLEAN_EXIT_VALUES = {"", "0", "None", "False"}
#: Seconds that stand for "no limit" where jupyter_client wants a whole number (an
#: infinite limit would overflow its conversion to milliseconds).
FOREVER = 10**9
#: Languages whose Jupyter kernels nbharness tests to report a failing cell (ipykernel and
#: xeus-python, IRkernel, bash_kernel): an iopub ``error`` or ``status: error`` in the reply.
REPORTING_LANGUAGES = frozenset({"python", "r", "bash"})
#: Kernels already warned about in this process: the warning comes once per session.
_WARNED_SILENT: set[str] = set()


class KernelBackend(Protocol):
    """What a ``KernelSession`` asks of a backend: how its kernel is found, started,
    described when it dies, and stopped. One backend object serves one session."""

    def missing(self, run: Run, name: str, source: str) -> NbHarnessError | None:
        """Why kernel ``name`` (chosen by ``source``) cannot run, or ``None`` when it can."""
        ...

    def manager(self, run: Run, name: str) -> AsyncKernelManager:
        """The manager nbclient starts kernel ``name`` with."""
        ...

    def start_options(self, run: Run) -> dict[str, Any]:
        """Keyword arguments for the kernel's start (output files, environment)."""
        ...

    def death(self, starting: bool) -> tuple[str, str]:
        """How the kernel died and what it said last, for the report (``starting``: it
        died before it answered)."""
        ...

    def timed_out(self) -> None:
        """A cell ran out of time (the kernel is stopped in any case when the session ends)."""
        ...

    def warnings(self, result: RunResult) -> list[str]:
        """Warnings about a run that stands (output the server dropped, say); asked when
        the notebook has run and again once the kernel is stopped."""
        ...

    async def stop(self, kc: KernelClient | None) -> None:
        """Stop the kernel and everything it started, and close ``kc``'s channels."""
        ...


class KernelSession:
    """One run on one kernel of ``backend``. Constructing it does nothing; ``execute``
    starts the kernel and runs the notebook, and the kernel stays up after the last cell,
    for questions (``run_code``), until ``close``."""

    def __init__(
        self, run: Run, backend: KernelBackend, observer: CellObserver | None = None
    ) -> None:
        self.run = run
        self.backend = backend
        self.watch = _CellWatch(observer)
        self.limits = _Limits(run)
        self.client: CappedClient | None = None
        self.closed = False
        #: What came of the run: set by ``execute``.
        self.result: RunResult

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def execute(self) -> RunResult:
        """Start the kernel and run every cell; the kernel stays up until ``close``."""
        run = self.run
        nb = _cleared(run.notebook)
        name, source = _kernel_choice(run, nb)
        missing = self.backend.missing(run, name, source)
        if missing is not None:
            self.result = RunResult(nb, missing)
            return self.result
        self.client = self._client_for(nb, name)
        try:
            # We own the kernel manager, so nbclient leaves the kernel up for us.
            options = self.backend.start_options(run)
            with sigterm_kept():
                error = self._guard(lambda: self._client.execute(cleanup_kc=False, **options))
        except BaseException:
            self.close()
            raise
        self.result = self._outcome(nb, error)
        self._add_warnings()
        return self.result

    def _client_for(self, nb: NotebookNode, name: str) -> CappedClient:
        run, watch = self.run, self.watch
        return CappedClient(
            nb,
            output_limit=run.output_limit,
            km=self.backend.manager(run, name),
            timeout_func=self.limits.for_cell,  # the ``timeout`` trait takes ints only
            startup_timeout=_whole_seconds(run.startup_timeout),
            kernel_name=name,
            resources={"metadata": {"path": str(run.cwd)}},
            skip_cells_with_tag=SKIP_TAG,
            allow_errors=run.allow_errors,
            interrupt_on_timeout=run.interrupt_on_timeout,
            on_notebook_start=self._kernel_ready,
            on_cell_start=watch.started,
            on_cell_executed=watch.executed,
            on_cell_error=watch.failed,
            log=_QUIET_LOG,
        )

    def _outcome(self, nb: NotebookNode, error: NbHarnessError | None) -> RunResult:
        """The run's result, once nbclient stopped with ``error`` (``None``: it ran through)."""
        run = self.run
        if isinstance(error, CellTimeout):
            self.backend.timed_out()
        if run.epilogue and not isinstance(error, (CellTimeout, KernelDied, KernelStartFailed)):
            with contextlib.suppress(Exception):  # best effort: the run's verdict stands
                run_sync(self._silently)(run.epilogue)
        if isinstance(error, KernelStartFailed):
            # nbclient registered its clean-up with atexit before the start failed, and
            # only unregisters it after a start that worked: it would fail at exit.
            atexit.unregister(self._client._cleanup_kernel)
        if error is None and not run.allow_errors:
            error = _late_error(nb)
        if _is_clean_exit(error):
            return RunResult(nb, exited_early=True, unraised=self.watch.unraised)
        result = RunResult(nb, error, unraised=self.watch.unraised)
        if error is None:
            result.warnings.extend(_silent_failure_warning(nb, self._client.kernel_name))
        return result

    def _add_warnings(self) -> None:
        result = self.result
        for note in self.backend.warnings(result):
            if note not in result.warnings:
                result.warnings.append(note)

    async def _kernel_ready(self, notebook: NotebookNode) -> None:
        self.watch.kernel_ready(notebook)
        if self.run.prologue:
            await self._silently(self.run.prologue)

    async def _silently(self, code: str) -> None:
        """Run ``code`` with no outputs, no history and no execution count."""
        assert self._client.kc is not None
        msg_id = self._client.kc.execute(code, silent=True, store_history=False)
        await self._client.async_wait_for_reply(msg_id)

    def run_code(self, code: str) -> NotebookNode:
        """Run ``code`` in the live kernel; the cell with its outputs, or the error raised."""
        cell: NotebookNode = new_code_cell(code)
        # nbclient writes the executed cell back into its notebook: give it a scratch one.
        self._client.nb = new_notebook(cells=[cell])
        error = self._guard(lambda: self._client.execute_cell(cell, 0, store_history=False))
        if error is not None:
            raise error
        return cell

    def close(self) -> None:
        """Stop the kernel and everything it started; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self.client is not None:
            run_sync(self.backend.stop)(self.client.kc)
            if hasattr(self, "result"):
                self._add_warnings()

    @property
    def _client(self) -> CappedClient:
        assert self.client is not None, "no kernel: the run could not start one"
        return self.client

    def _guard(self, call: Callable[[], object]) -> NbHarnessError | None:
        """Run ``call`` on the kernel and say how it ended, as an error or ``None``."""
        try:
            with warnings.catch_warnings():
                # Deprecations inside jupyter_client/zmq are not the user's to fix, and a
                # project's ``filterwarnings = error`` must not turn them into failures.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                call()
        except BaseException as exc:
            if self.watch.interrupted:
                raise KeyboardInterrupt from None
            return self._explain(exc)
        return None

    def _explain(self, exc: BaseException) -> NbHarnessError:
        """The error to report for how nbclient stopped; anything unforeseen is re-raised."""
        watch, name = self.watch, self._client.kernel_name
        if isinstance(exc, NbHarnessError):
            return exc  # the backend's own words (a server that refused, say)
        if isinstance(exc, CellExecutionError):
            return watch.error(_language(self._client.nb))
        if isinstance(exc, CellTimeoutError):
            seconds, limit = self.limits.last
            return CellTimeout(**watch.where(), timeout=seconds, limit=limit)
        if isinstance(exc, NoAnswer) and watch.cell is None:
            run = self.run
            return KernelStartFailed(
                f"kernel {name!r} did not start within {run.startup_timeout:g} s "
                f"({run.startup_timeout_source})"
            )
        if isinstance(exc, DeadKernelError) and watch.cell is not None:
            how, said = self.backend.death(starting=False)
            return KernelDied(**watch.where(), stderr=said, how=how)
        if isinstance(exc, DeadKernelError):
            _, said = self.backend.death(starting=True)
            return KernelStartFailed(f"kernel {name!r} died during start-up: {said}")
        if isinstance(exc, Exception) and watch.cell is None:
            # A kernel that cannot start fails in many library-specific ways.
            reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            return KernelStartFailed(f"kernel {name!r} could not start: {reason}")
        raise exc


def _kernel_choice(run: Run, nb: NotebookNode) -> tuple[str, str]:
    """The kernel to start, and where its name came from (for a report that it is missing)."""
    if run.kernel:
        return run.kernel, run.kernel_source
    own = kernel_name(nb)
    return (own, "the notebook's kernelspec") if own else (DEFAULT_KERNEL, "the default")


def _whole_seconds(seconds: float) -> int:
    return FOREVER if seconds >= FOREVER else math.ceil(seconds)


def _language(nb: NotebookNode) -> str:
    """The running kernel's language, from its kernel_info reply (nbclient stores it)."""
    return str(nb.metadata.get("language_info", {}).get("name", "")).lower()


def _late_error(nb: NotebookNode) -> CellError | None:
    """An error output in a cell whose execution succeeded: raised by a callback after
    the cell (a matplotlib post_execute hook, say), or sent on iopub by a kernel whose
    reply still said "ok". nbclient lets it pass; we do not."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or RAISES.on(cell):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") != "SystemExit":
                return CellError.from_output(index, cell, out, _language(nb))
    return None


def _silent_failure_warning(nb: NotebookNode, kernel: str) -> list[str]:
    """A warning, once per session, for a kernel of a language nbharness does not test
    whose passing run wrote to stderr: such a kernel may report a failing cell neither
    on iopub nor in its reply (nbconvert#1058), and nbharness would not see it."""
    language = _language(nb)
    if language in REPORTING_LANGUAGES or kernel in _WARNED_SILENT:
        return []
    for number, cell in enumerate(nb.cells, start=1):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                _WARNED_SILENT.add(kernel)
                return [
                    f"kernel {kernel!r} ({language or 'language unknown'}) wrote to stderr "
                    f"in cell {number} yet reported no error; nbharness fails a cell only "
                    "when its kernel reports an error (an iopub error or an execute_reply "
                    "with status error), so check that this kernel's failing cells fail "
                    "(warned once per session)"
                ]
    return []


def _is_clean_exit(error: NbHarnessError | None) -> bool:
    return (
        isinstance(error, CellError)
        and error.ename == "SystemExit"
        and error.evalue in CLEAN_EXIT_VALUES
    )


class _Limits:
    """The time limit of each cell: its own, the run's, or what is left of the notebook's."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.deadline: float | None = None
        self.last: tuple[float, str] = (run.cell_timeout, "")

    def for_cell(self, cell: NotebookNode) -> float | None:
        """The cell's limit in seconds; ``None`` (nbclient's "no limit") for an infinite one."""
        run = self.run
        own = cell_timeout(cell)
        if own is not None:
            self.last = (own, f"its own timeout of {own:g} s (cell metadata nbharness.timeout)")
        else:
            self.last = (
                run.cell_timeout,
                f"the cell timeout of {run.cell_timeout:g} s ({run.cell_timeout_source})",
            )
        if run.notebook_timeout is not None:
            if self.deadline is None:
                self.deadline = time.monotonic() + run.notebook_timeout
            left = max(self.deadline - time.monotonic(), 0.001)
            if left < self.last[0]:
                self.last = (
                    left,
                    f"the notebook timeout of {run.notebook_timeout:g} s "
                    f"({run.notebook_timeout_source})",
                )
        return None if math.isinf(self.last[0]) else self.last[0]


class _CellWatch:
    """Follows nbclient's progress through its hooks."""

    def __init__(self, observer: CellObserver | None) -> None:
        self.observer = observer
        #: The cell running (or last run) and its index.
        self.cell: NotebookNode | None = None
        self.index = 0
        self.unraised: list[int] = []
        self.interrupted = False
        #: The failing cell's execute_reply content: the error when the kernel sent no
        #: error output (IPython's UsageError for an unknown magic, say).
        self.reply: dict[str, Any] = {}

    def kernel_ready(self, notebook: NotebookNode) -> None:
        """Make Ctrl-C (or SIGTERM) stop the run, and pytest with it, not just the kernel."""
        cancel_on_interrupt(self._interrupted)

    def _interrupted(self) -> None:
        self.interrupted = True

    def started(self, cell: NotebookNode, cell_index: int) -> None:
        self.cell, self.index = cell, cell_index
        if self.observer is not None:
            self.observer.cell_started(cell_index, cell)

    def failed(self, cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
        self.reply = execute_reply.get("content", {})
        if self.observer is not None:
            self.observer.cell_finished(cell_index, cell)

    def executed(self, cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
        ok = execute_reply.get("content", {}).get("status") == "ok"
        if ok and RAISES.on(cell):
            self.unraised.append(cell_index)
        if self.observer is not None:
            self.observer.cell_finished(cell_index, cell)

    def where(self) -> dict[str, Any]:
        assert self.cell is not None
        return {
            "index": self.index,
            "source": self.cell.source,
            "execution_count": self.cell.get("execution_count"),
        }

    def error(self, language: str) -> CellError:
        """The failing cell's error: its last error output, or else what the reply said
        (a kernel may report a failure only there, with ``status: error``)."""
        assert self.cell is not None
        outputs = self.cell.get("outputs", [])
        found = [out for out in outputs if out.get("output_type") == "error"]
        out = found[-1] if found else self.reply
        return CellError.from_output(self.index, self.cell, out, language)


def _cleared(nb: NotebookNode) -> NotebookNode:
    """A copy to run: no stored outputs (the executed notebook shows only this run), and
    other tools' skip and raises markers as nbclient's tags."""
    nb = with_executor_tags(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb
