"""The ``notebook`` fixture: run a notebook, then question its live kernel from a test.

What testbook offers, without its rough edges: the notebook's own kernel and folder,
parameters through papermill like ``pytest --nb``, values that come back as plain
Python data (or their repr), and a kernel that is always killed when the test ends.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import dataclasses
import json
import pickle as pickle_module
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config.settings import Settings
from ..errors import CellError, CellProblem, CodeError, NbHarnessError, NotebookFailed
from ..execute import Executor, LiveRun
from ..notebook.cellmarks import is_injected, with_injected_code
from ..notebook.io import cell_tags, read_notebook
from ..notebook_tests.discover import find_tests
from ..notebook_tests.kernel_code import TestOutcome, read_results, run_tests_code
from ..plan import plan
from ..plan.parameters import inject, sets_from
from ..report import locate, render

if TYPE_CHECKING:
    from nbformat import NotebookNode

#: Wraps an expression so the kernel answers with JSON, using ``repr`` for the rest.
_AS_JSON = "__import__('json').dumps(({expression}), default=repr)"
#: ... or with the pickled object, as base64 text inside JSON.
_AS_PICKLE = "__import__('base64').b64encode(__import__('pickle').dumps(({expression}))).decode()"


class LiveNotebook:
    """An executed notebook whose kernel is still running."""

    def __init__(self, live: LiveRun, path: Path, rootdir: Path | None = None) -> None:
        self._live = live
        self._path = path
        #: Where the kernel's pytest looks for ``conftest.py`` files (``run_tests``).
        self._rootdir = rootdir or path.parent
        #: The executed notebook, with the cells the test injected and the parameters cell.
        self.notebook: NotebookNode = live.result.notebook
        self._patches = 0

    @property
    def cells(self) -> list[NotebookNode]:
        """The executed cells, indexed as in your notebook (without injected cells)."""
        return [cell for cell in self.notebook.cells if not is_injected(cell)]

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

    def value(self, expression: str, *, pickle: bool = False) -> Any:
        """The value of ``expression`` in the kernel: JSON data, or its ``repr`` as a string.

        With ``pickle=True`` the object itself comes back, pickled in the kernel: both
        sides must run the same Python (checked) and have the object's classes.
        """
        self._python_only("value")
        if not pickle:
            return self._evaluate(expression, expression)
        version = self._evaluate("__import__('sys').version_info[:2]", "sys.version_info")
        if tuple(version) != sys.version_info[:2]:
            here = ".".join(map(str, sys.version_info[:2]))
            there = ".".join(map(str, version))
            raise CodeError(
                f"pickle needs the same Python on both sides: the kernel runs {there}, "
                f"this process {here}"
            )
        encoded = self._evaluate(_AS_PICKLE.format(expression=expression), expression)
        return pickle_module.loads(base64.b64decode(encoded))

    @contextlib.contextmanager
    def patch(self, target: str, **kwargs: Any) -> Iterator[None]:
        """``unittest.mock.patch(target, **kwargs)`` inside the kernel, for the ``with`` block.

        Keyword values cross as JSON (``return_value=3``, ``side_effect=[1, 2]``).
        """
        self._python_only("patch")
        self._patches += 1
        name = f"__nbharness_patch_{self._patches}"
        payload = json.dumps(kwargs)
        self._run(
            f"{name} = __import__('unittest.mock').mock.patch({target!r}, "
            f"**__import__('json').loads({payload!r})); {name}.start()",
            f"patch({target!r})",
        )
        try:
            yield
        finally:
            self._run(f"{name}.stop(); del {name}", f"patch({target!r})")

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call a function defined in the notebook with JSON-able arguments."""
        self._python_only("call")
        try:
            payload = json.dumps([args, kwargs])
        except (TypeError, ValueError) as exc:
            raise TypeError(f"arguments for {function}() must be JSON data: {exc}") from None
        call = f"(lambda a, k: {function}(*a, **k))(*__import__('json').loads({payload!r}))"
        return self._evaluate(call, f"{function}(...)")

    def run_tests(self, *names: str) -> dict[str, TestOutcome]:
        """Run the notebook's ``test_*`` functions (all, or the ids named) under pytest in
        its kernel: each test's outcome, with pytest's own text for a failure."""
        selected = list(names) or [test.id for test in find_tests(self.notebook)]
        cell = self._run(run_tests_code(self._path, self._rootdir, selected), "run_tests()")
        results = read_results(cell)
        if results.problem:
            raise CodeError(f"run_tests(): {results.problem}")
        return results.outcomes

    def close(self) -> None:
        self._live.close()

    def _python_only(self, method: str) -> None:
        """``value``, ``call`` and ``patch`` send Python: refuse a kernel of another language."""
        language = self.notebook.metadata.get("language_info", {}).get("name", "python")
        if str(language).lower() != "python":
            raise CodeError(
                f"notebook.{method}() needs a Python kernel, and this notebook's runs "
                f"{language}; use notebook.execute(code) and notebook.text(cell) instead"
            )

    def _evaluate(self, expression: str, shown_as: str) -> Any:
        cell = self._run(_AS_JSON.format(expression=expression), shown_as)
        results = [out for out in cell.outputs if out.get("output_type") == "execute_result"]
        return json.loads(ast.literal_eval(results[-1]["data"]["text/plain"]))

    def _run(self, code: str, shown_as: str) -> NotebookNode:
        """Run ``code``; errors name ``shown_as``, what the test asked for."""
        try:
            return self._live.run_code(code)
        except CellError as exc:
            # Named as the test asked for it: not the wrapper code the kernel ran.
            asked = dataclasses.replace(
                exc, source=shown_as, execution_count=None, injected=repr(shown_as)
            )
            raise CodeError(render(asked)) from None
        except CellProblem as exc:
            raise CodeError(f"running {shown_as!r} in the kernel: {exc.summary}") from None


def open_notebook(
    path: Path,
    settings: Settings,
    executor: Executor,
    parameters: dict[str, Any] | None = None,
    kernel: str | None = None,
    before: Mapping[int | str, str] | None = None,
    after: Mapping[int | str, str] | None = None,
    rootdir: Path | None = None,
) -> LiveNotebook:
    """Run the notebook at ``path`` and keep its kernel; raise ``NotebookFailed`` if it fails.
    ``rootdir`` is where the kernel's pytest finds the project's ``conftest.py`` files."""
    stored, _ = read_notebook(path)
    nb = with_injected_code(stored, before or {}, after or {})
    if parameters is not None:
        (values,) = sets_from([parameters], f"{path.name}: parameters=")
        nb, _ = inject(nb, values.values, kernel or settings.kernel)
    live = executor.open(plan(path, stored, settings, kernel=kernel, to_run=nb).run)
    notebook = LiveNotebook(live, path, rootdir)
    if live.result.error is not None:
        notebook.close()
        error = locate(live.result.error, live.result.notebook, stored)
        raise NotebookFailed(f"{path.name}: {render(error, 'long')}")
    return notebook


def open_notebooks(request: pytest.FixtureRequest) -> Iterator[Callable[..., LiveNotebook]]:
    """The body of the ``notebook`` fixture (``plugin.py``): opens notebooks for a test,
    and kills every kernel opened when the test ends, passed or failed."""
    from ..config.settings import settings_of
    from .items import executor_for

    config = request.config
    opened: list[LiveNotebook] = []

    def open_(
        path: str | Path,
        parameters: dict[str, Any] | None = None,
        *,
        kernel: str | None = None,
        before: Mapping[int | str, str] | None = None,
        after: Mapping[int | str, str] | None = None,
    ) -> LiveNotebook:
        resolved = Path(path) if Path(path).is_absolute() else config.rootpath / path
        try:
            settings, executor = settings_of(config), executor_for(config)
            live = open_notebook(
                resolved,
                settings,
                executor,
                parameters,
                kernel,
                before=before,
                after=after,
                rootdir=config.rootpath,
            )
        except (NbHarnessError, pytest.UsageError) as exc:  # a bad setting: built lazily here
            pytest.fail(str(exc), pytrace=False)
        opened.append(live)
        return live

    yield open_
    for live in opened:
        live.close()
