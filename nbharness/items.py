"""pytest collectors and items: a notebook file, and one test item per run of it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from nbformat import NotebookNode

from .errors import CellError, InvalidNotebook, MissingException, NbHarnessError, NotebookWarning
from .execute import Executor, Run, RunResult, get_executor
from .notebook import read_notebook, skip_reason, write_notebook
from .report import CrashLine, FailureRepr, render
from .settings import Settings

SETTINGS_KEY = pytest.StashKey[Settings]()
EXECUTOR_KEY = pytest.StashKey[Executor]()


class NotebookFile(pytest.File):
    """A ``.ipynb`` file; yields one item per planned run."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            nb = read_notebook(self.path)
        except InvalidNotebook as exc:
            # A collection error would stop the whole session; a failing item lets
            # every other notebook run and still names this file in one line.
            yield InvalidNotebookItem.from_parent(self, name=self.path.stem, error=exc)
            return
        settings = self.config.stash[SETTINGS_KEY]
        run = Run(
            path=self.path,
            notebook=nb,
            cwd=self.path.parent,
            cell_timeout=settings.cell_timeout,
            kernel=settings.kernel,
        )
        item = NotebookItem.from_parent(self, name=self.path.stem, run=run)
        reason = skip_reason(nb)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
        yield item


class _NotebookItemBase(pytest.Item):
    # pytest accepts any object with ``toterminal``; its ``TerminalRepr`` base is private.
    def repr_failure(  # type: ignore[override]
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: str | None = None,
    ) -> object:
        error = excinfo.value
        if not isinstance(error, NbHarnessError):
            return super().repr_failure(excinfo, style)  # type: ignore[arg-type]
        tbstyle = style or self.config.getoption("tbstyle", "auto")
        text = render(error, tbstyle, fulltrace=bool(self.config.getoption("fulltrace")))
        return FailureRepr(text, CrashLine(self.nodeid.split("::")[0], error.summary))

    def reportinfo(self) -> tuple[Path, int, str]:
        # pytest shows the "domain" as the failure's headline, and in ``-v`` lines prints
        # its dots as "::" (for Class.method); a dotted name would show a wrong test id.
        domain = self.name if "." not in self.name.split("[")[0] else ""
        return self.path, 0, domain


class InvalidNotebookItem(_NotebookItemBase):
    """Stands in for a file that could not be read, and fails with the reason."""

    def __init__(self, *, error: InvalidNotebook, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.error = error

    def runtest(self) -> None:
        raise self.error


class NotebookItem(_NotebookItemBase):
    """One run of one notebook on a fresh kernel."""

    def __init__(self, *, run: Run, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.run = run

    def runtest(self) -> None:
        settings = self.config.stash[SETTINGS_KEY]
        result = executor_for(self.config).execute(self.run)
        if settings.output_dir is not None:
            write_notebook(result.notebook, output_path(self, settings.output_dir))
        error = result.error or self._unraised(result, settings.strict_raises)
        if error is not None:
            if isinstance(error, CellError):
                self._attach_cell_streams(result.notebook, error.index)
            raise error

    def _unraised(self, result: RunResult, strict: bool) -> NbHarnessError | None:
        for index in result.unraised:
            cell = result.notebook.cells[index]
            problem = MissingException(index, cell.source, cell.get("execution_count"))
            if strict:
                return problem
            warnings.warn(NotebookWarning(f"{self.path.name}: {problem.summary}"), stacklevel=1)
        return None

    def _attach_cell_streams(self, nb: NotebookNode, index: int) -> None:
        """The failing cell's stdout/stderr, shown as pytest's "Captured ..." sections."""
        for name in ("stdout", "stderr"):
            text = "".join(
                out.get("text", "")
                for out in nb.cells[index].get("outputs", [])
                if out.get("output_type") == "stream" and out.get("name") == name
            )
            if text:
                self.add_report_section("call", name, text)


def executor_for(config: pytest.Config) -> Executor:
    """The session's executor, entered on first use and closed at session end."""
    if EXECUTOR_KEY not in config.stash:
        executor = get_executor(config.stash[SETTINGS_KEY].executor)
        config.stash[EXECUTOR_KEY] = executor.__enter__()
    return config.stash[EXECUTOR_KEY]


def close_executor(config: pytest.Config) -> None:
    executor = config.stash.get(EXECUTOR_KEY, None)
    if executor is not None:
        del config.stash[EXECUTOR_KEY]
        executor.__exit__(None, None, None)


def output_path(item: pytest.Item, output_dir: Path) -> Path:
    """Where the executed notebook goes: the test root's tree, mirrored under ``output_dir``."""
    try:
        relative = item.path.relative_to(item.config.rootpath)
    except ValueError:
        relative = Path(item.path.name)
    return output_dir / relative
