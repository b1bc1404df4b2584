"""``papermill --engine nbharness``: papermill's CLI and API on nbharness's executors.

papermill injects the parameters and writes the output notebook; the run itself goes
through the same executor interface as ``pytest --nb``, chosen with the environment
variable ``NBHARNESS_EXECUTOR`` (default ``local``), with pytest's default launcher (the
fork server on Linux). papermill's ``--start-timeout``, ``--execution-timeout``,
``--stdout-file`` and ``--stderr-file`` are honoured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from nbformat import NotebookNode
from nbformat.v4 import new_output
from papermill.engines import Engine, NotebookExecutionManager
from papermill.log import logger

from .errors import CellError, CellProblem, KernelNotFound, NbHarnessError
from .execute import (
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_LAUNCHER,
    DEFAULT_STARTUP_TIMEOUT,
    ExecutorSettings,
    Run,
    make_executor,
)


class NbHarnessEngine(Engine):  # type: ignore[misc]  # papermill is untyped
    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: NotebookExecutionManager,
        kernel_name: str | None,
        execution_timeout: float | None = None,
        input_path: str | None = None,
        log_output: bool = False,
        start_timeout: float | None = None,
        stdout_file: IO[str] | None = None,
        stderr_file: IO[str] | None = None,
        **kwargs: Any,
    ) -> NotebookNode:
        run = Run(
            path=Path(input_path or "notebook.ipynb"),
            notebook=nb_man.nb,
            cwd=Path.cwd(),  # papermill has already moved into --cwd
            cell_timeout=float(execution_timeout or DEFAULT_CELL_TIMEOUT),
            cell_timeout_source="papermill --execution-timeout",
            startup_timeout=float(start_timeout or DEFAULT_STARTUP_TIMEOUT),
            startup_timeout_source="papermill --start-timeout",
            kernel=kernel_name,
            launcher=DEFAULT_LAUNCHER,
        )
        progress = _Progress(nb_man, log_output, {"stdout": stdout_file, "stderr": stderr_file})
        name = os.environ.get("NBHARNESS_EXECUTOR", "local")
        with make_executor(name, ExecutorSettings()) as executor:
            result = executor.execute(run, progress)
        for index, cell in enumerate(result.notebook.cells):
            _copy_outputs(cell, nb_man.nb.cells[index])
        if result.error is None:
            progress.catch_up(len(nb_man.nb.cells))
        if "language_info" in result.notebook.metadata:
            nb_man.nb.metadata["language_info"] = result.notebook.metadata["language_info"]
        error = result.error
        if isinstance(error, CellProblem):
            cell = nb_man.nb.cells[error.index]
            if not isinstance(error, CellError) or not _has_error_output(cell):
                # papermill reports a failed cell by its error output: give it one.
                cell.outputs.append(
                    new_output(
                        "error",
                        ename=type(error).__name__,
                        evalue=error.summary,
                        traceback=[error.summary],
                    )
                )
            nb_man.cell_exception(cell, cell_index=error.index)
        elif isinstance(error, KernelNotFound):
            raise KernelNotFound(error.name, error.available, override="papermill -k NAME")
        elif isinstance(error, NbHarnessError):
            raise error.with_traceback(None) from None  # the reason, not our call stack
        executed: NotebookNode = nb_man.nb
        return executed


class _Progress:
    """Feeds papermill's execution manager: progress bar, cell metadata, autosave, log."""

    def __init__(
        self,
        nb_man: NotebookExecutionManager,
        log_output: bool,
        streams: dict[str, IO[str] | None],
    ) -> None:
        self.nb_man = nb_man
        self.log_output = log_output
        #: papermill's ``--stdout-file``/``--stderr-file``: where each stream is copied.
        self.streams = streams
        self.next = 0  # cells before this one have been started and completed

    def catch_up(self, index: int) -> None:
        """Start and complete the cells nothing ran (markdown, empty, skipped) up to ``index``."""
        for passed in range(self.next, index):
            cell = self.nb_man.nb.cells[passed]
            self.nb_man.cell_start(cell, passed)
            self.nb_man.cell_complete(cell, cell_index=passed)
        self.next = max(self.next, index)

    def cell_started(self, index: int, cell: NotebookNode) -> None:
        self.catch_up(index)
        self.nb_man.cell_start(self.nb_man.nb.cells[index], index)

    def cell_finished(self, index: int, cell: NotebookNode) -> None:
        target = self.nb_man.nb.cells[index]
        _copy_outputs(cell, target)
        if self.log_output:
            _log_outputs(cell)
        _copy_streams(cell, self.streams)
        self.nb_man.cell_complete(target, cell_index=index)
        self.next = index + 1


def _log_outputs(cell: NotebookNode) -> None:
    """What ``papermill --log-output`` shows: stdout and text results as info, stderr as warning."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            text = "".join(out.get("text", ""))
            (logger.warning if out.get("name") == "stderr" else logger.info)(text)
        elif "text/plain" in out.get("data", {}):
            logger.info("".join(out["data"]["text/plain"]))


def _copy_streams(cell: NotebookNode, files: dict[str, IO[str] | None]) -> None:
    """A finished cell's stdout and stderr, appended to papermill's files for them."""
    for out in cell.get("outputs", []):
        target = files.get(out.get("name", "")) if out.get("output_type") == "stream" else None
        if target is not None:
            target.write("".join(out.get("text", "")))
            target.flush()


def _copy_outputs(source: NotebookNode, target: NotebookNode) -> None:
    if source.cell_type == "code":
        target.outputs = source.outputs
        target.execution_count = source.execution_count


def _has_error_output(cell: NotebookNode) -> bool:
    return any(out.get("output_type") == "error" for out in cell.get("outputs", []))
