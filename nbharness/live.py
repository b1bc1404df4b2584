"""The ``notebook`` fixture: run a notebook, then question its live kernel from a test.

What testbook offers, without its rough edges: the notebook's own kernel and folder,
parameters through papermill like ``pytest --nb``, values that come back as plain
Python data (or their repr), and a kernel that is always killed when the test ends.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nbformat import NotebookNode

from .errors import CellError, CellProblem, CodeError, NbHarnessError, NotebookFailed
from .execute import Executor, LiveRun
from .notebook import cell_tags, read_notebook
from .params import inject, sets_from
from .report import clean_traceback, render
from .runs import run_for
from .settings import Settings

#: Wraps an expression so the kernel answers with JSON, using ``repr`` for the rest.
_AS_JSON = "__import__('json').dumps(({expression}), default=repr)"


class LiveNotebook:
    """An executed notebook whose kernel is still running."""

    def __init__(self, live: LiveRun, injected_at: int | None) -> None:
        self._live = live
        self._injected_at = injected_at
        #: The executed notebook, papermill's injected-parameters cell included.
        self.notebook: NotebookNode = live.result.notebook

    @property
    def cells(self) -> list[NotebookNode]:
        """The executed cells, indexed as in your notebook (without the injected cell)."""
        return [
            cell for index, cell in enumerate(self.notebook.cells) if index != self._injected_at
        ]

    def cell(self, key: int | str) -> NotebookNode:
        """A cell by 0-based index, or the first cell carrying the tag ``key``."""
        if isinstance(key, int):
            return self.cells[key]
        for cell in self.cells:
            if key in cell_tags(cell):
                return cell
        raise KeyError(f"no cell is tagged {key!r}")

    def outputs(self, key: int | str) -> list[NotebookNode]:
        return list(self.cell(key).get("outputs", []))

    def text(self, key: int | str) -> str:
        """What a reader sees of the cell's output as text: streams and ``text/plain``."""
        parts = []
        for out in self.outputs(key):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "text/plain" in out.get("data", {}):
                parts.append(out["data"]["text/plain"] + "\n")
        return "".join(parts)

    def execute(self, code: str) -> NotebookNode:
        """Run ``code`` in the kernel and return the executed cell (with its outputs)."""
        return self._run(code, code)

    def value(self, expression: str) -> Any:
        """The value of ``expression`` in the kernel: JSON data, or its ``repr`` as a string."""
        return self._evaluate(expression, expression)

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call a function defined in the notebook with JSON-able arguments."""
        try:
            payload = json.dumps([args, kwargs])
        except (TypeError, ValueError) as exc:
            raise TypeError(f"arguments for {function}() must be JSON data: {exc}") from None
        call = f"(lambda a, k: {function}(*a, **k))(*__import__('json').loads({payload!r}))"
        return self._evaluate(call, f"{function}(...)")

    def close(self) -> None:
        self._live.close()

    def _evaluate(self, expression: str, shown_as: str) -> Any:
        cell = self._run(_AS_JSON.format(expression=expression), shown_as)
        results = [out for out in cell.outputs if out.get("output_type") == "execute_result"]
        return json.loads(ast.literal_eval(results[-1]["data"]["text/plain"]))

    def _run(self, code: str, shown_as: str) -> NotebookNode:
        """Run ``code``; errors name ``shown_as``, what the test asked for."""
        try:
            return self._live.run_code(code)
        except CellError as exc:
            lines = [f"{shown_as!r} raised {exc.ename}: {exc.evalue}".rstrip(": ")]
            lines += clean_traceback(exc.traceback)
            raise CodeError("\n".join(lines)) from None
        except CellProblem as exc:
            raise CodeError(f"running {shown_as!r} in the kernel: {exc.summary}") from None


def open_notebook(
    path: Path,
    settings: Settings,
    executor: Executor,
    parameters: dict[str, Any] | None = None,
    kernel: str | None = None,
) -> LiveNotebook:
    """Run the notebook at ``path`` and keep its kernel; raise ``NotebookFailed`` if it fails."""
    nb, _ = read_notebook(path)
    stored, injected_at = nb, None
    if parameters is not None:
        (values,) = sets_from([parameters], f"{path.name}: parameters=")
        nb, injected_at = inject(nb, values.values, kernel or settings.kernel)
    run = dataclasses.replace(run_for(path, nb, settings, stored), kernel=kernel or settings.kernel)
    live = executor.open(run)
    notebook = LiveNotebook(live, injected_at)
    if live.result.error is not None:
        notebook.close()
        raise NotebookFailed(f"{path.name}: {render(live.result.error, 'long')}")
    return notebook


@pytest.fixture
def notebook(request: pytest.FixtureRequest) -> Iterator[Callable[..., LiveNotebook]]:
    """Open notebooks in a test: ``nb = notebook("analysis.ipynb", parameters={...})``.

    Relative paths start at the test root. Every kernel opened is killed when the test
    ends, passed or failed.
    """
    from .items import SETTINGS_KEY, executor_for

    config = request.config
    opened: list[LiveNotebook] = []

    def open_(
        path: str | Path, parameters: dict[str, Any] | None = None, *, kernel: str | None = None
    ) -> LiveNotebook:
        resolved = Path(path) if Path(path).is_absolute() else config.rootpath / path
        try:
            settings, executor = config.stash[SETTINGS_KEY], executor_for(config)
            live = open_notebook(resolved, settings, executor, parameters, kernel)
        except NbHarnessError as exc:
            pytest.fail(str(exc), pytrace=False)
        opened.append(live)
        return live

    yield open_
    for live in opened:
        live.close()
