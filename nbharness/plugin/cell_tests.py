"""The tests a notebook defines, as pytest items run in the notebook's own kernel.

The notebook's item (or, when ``-k`` left it out, its first test item) runs the notebook
once; right after the last cell the selected tests run under pytest in that kernel, and
each test item reports its own result from there. Under xdist all of a notebook's items
go to one worker (``--dist loadfile`` made the default).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..errors import KernelTestFailed, NbHarnessError
from ..execute import Executor, LiveRun, Run, RunResult
from ..notebook.cellmarks import is_injected
from ..notebook_tests.discover import FoundTest
from ..notebook_tests.kernel_code import TestOutcome, TestResults, read_results, run_tests_code
from .cache import PROPERTY
from .items import NotebookItem, NotebookItemBase

if TYPE_CHECKING:
    from nbformat import NotebookNode

#: Where the kernel's text names a line of an executed cell: ``In [3]:6``.
_IN_CELL = re.compile(r"In \[(\d+)\]:(\d+)")


class NotebookTests:
    """A notebook's tests: which exist, and what came of those selected."""

    def __init__(self) -> None:
        self.items: list[NotebookTestItem] = []
        #: Set once they ran; ``None`` while they did not (the notebook failed, say).
        self.results: TestResults | None = None

    def run_with(self, executor: Executor, run: Run) -> RunResult:
        """Run the notebook, then its selected tests while its kernel is still up."""
        selected = self._selected()
        if not selected:
            return executor.execute(run)
        live = executor.open(run)
        try:
            result = live.result
            if result.error is None and not result.exited_early:
                self.results = self._run(live, run, selected)
        finally:
            live.close()
        return result

    def _selected(self) -> list[str]:
        """The ids of this notebook's test items still in the session (after ``-k``, ``-m``)."""
        session_items = set(self.items[0].session.items) if self.items else set()
        return [item.test_id for item in self.items if item in session_items]

    def _run(self, live: LiveRun, run: Run, selected: list[str]) -> TestResults:
        item = self.items[0]
        try:
            cell = live.run_code(run_tests_code(run.path, item.config.rootpath, selected))
        except NbHarnessError as exc:
            return TestResults({}, f"the tests could not run in the kernel: {exc.summary}")
        results = _with_cell_numbers(read_results(cell), live.result.notebook)
        failed = any(o.outcome in ("failed", "error") for o in results.outcomes.values())
        if results.problem or failed:
            _not_a_cached_pass(item.run_item)
        return results


def _with_cell_numbers(results: TestResults, executed: NotebookNode) -> TestResults:
    """``In [3]:6`` in pytest's text as ``cell 2 (In [3]), line 6``: the cell as the
    notebook numbers it, since execution counts differ from run to run."""
    counts = {}
    user_cells = [cell for cell in executed.cells if not is_injected(cell)]
    for number, cell in enumerate(user_cells, start=1):
        if cell.get("execution_count") is not None:
            counts[str(cell.execution_count)] = number

    def name(match: re.Match[str]) -> str:
        count, line = match.groups()
        cell = f"cell {counts[count]} " if count in counts else ""
        return f"{cell}(In [{count}]), line {line}"

    outcomes = {
        test: TestOutcome(o.outcome, _IN_CELL.sub(name, o.text), o.when)
        for test, o in results.outcomes.items()
    }
    return TestResults(outcomes, results.problem)


def _not_a_cached_pass(item: NotebookItem) -> None:
    """A notebook whose tests fail must not be skipped next time by ``--nb-cache``."""
    item.user_properties[:] = [p for p in item.user_properties if p[0] != PROPERTY]


class NotebookTestItem(NotebookItemBase):
    """One test function (or one case of it) of a notebook, run in the notebook's kernel."""

    def __init__(self, *, run_item: NotebookItem, found: FoundTest, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.run_item = run_item
        self.test_id = found.id
        self.cell = found.cell

    def runtest(self) -> None:
        notebook = self.run_item
        notebook.run_once()
        tests = notebook.tests
        assert tests is not None
        if tests.results is None:
            self._not_run(notebook.ended)
        elif tests.results.problem:
            raise KernelTestFailed(f"not run: {tests.results.problem}")
        else:
            _report(self.test_id, self.cell, tests.results.outcomes)

    def _not_run(self, ended: BaseException | None) -> None:
        if isinstance(ended, pytest.skip.Exception):
            pytest.skip(f"not run: {ended.msg}")
        if ended is None:
            pytest.skip("not run: the notebook ended early (sys.exit)")
        summary = ended.summary if isinstance(ended, NbHarnessError) else str(ended)
        raise KernelTestFailed(f"not run: the notebook failed: {summary}")

    def reportinfo(self) -> tuple[Path, int, str]:
        # Not a tail of the node id (see ``NotebookItemBase.reportinfo``).
        parameters = self.run_item.parameters
        in_set = "" if parameters is None else f"[{parameters.id}]"
        return self.path, 0, f"{self.test_id} in {self.path.name}{in_set}"


def _report(test_id: str, cell: int, outcomes: dict[str, TestOutcome]) -> None:
    """End the item as the test ended in the kernel; a bare name whose cases pytest named
    in the kernel (ids not known statically) ends as the worst of them."""
    if test_id in outcomes:
        _end_as(outcomes[test_id])
        return
    cases = {name: o for name, o in outcomes.items() if name.split("[")[0] == test_id}
    if not cases:
        found = ", ".join(sorted(outcomes)) or "none"
        raise KernelTestFailed(
            f"{test_id} (cell {cell + 1}) did not run in the kernel (tests that ran: {found})"
        )
    bad = {name: o for name, o in cases.items() if o.outcome in ("failed", "error")}
    if bad:
        text = "\n\n".join(f"{name}:\n{o.text}" for name, o in bad.items())
        raise KernelTestFailed(f"{len(bad)} of {len(cases)} cases failed\n\n{text}")
    if all(o.outcome == "skipped" for o in cases.values()):
        pytest.skip(next(iter(cases.values())).text)


def _end_as(outcome: TestOutcome) -> None:
    if outcome.outcome == "failed":
        raise KernelTestFailed(outcome.text)
    if outcome.outcome == "error":
        raise KernelTestFailed(f"error in {outcome.when}:\n{outcome.text}")
    if outcome.outcome == "skipped":
        pytest.skip(outcome.text)
    if outcome.outcome == "xfailed":
        pytest.xfail(outcome.text)


def group_notebooks_on_workers(config: pytest.Config) -> None:
    """Under xdist, make ``--dist loadfile`` the default: a notebook's test items share
    its one run, so they must reach the worker that runs it, and loadfile sends all items
    of a file to one worker. A ``--dist`` the user chose stays. (``loadgroup`` would group
    only marked items, but xdist 3.8 cannot mark node ids under pytest 9.2.)"""
    given = config.known_args_namespace
    chosen = getattr(given, "dist", "no") != "no" or getattr(given, "distload", False)
    if not chosen and getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadfile"


def add_test_items(notebook: NotebookItem, found: list[FoundTest]) -> list[NotebookTestItem]:
    """The test items of ``notebook`` (which must carry ``NotebookTests``), with its marks."""
    tests = notebook.tests
    assert tests is not None
    parent = notebook.parent
    assert isinstance(parent, pytest.File)
    for test in found:
        name = in_parameter_set(test.id, notebook)
        item = NotebookTestItem.from_parent(
            parent, name=name, nodeid=f"{parent.nodeid}::{name}", run_item=notebook, found=test
        )
        for mark in notebook.own_markers:
            item.add_marker(getattr(pytest.mark, mark.name)(*mark.args, **mark.kwargs))
        tests.items.append(item)
    return tests.items


def in_parameter_set(test_id: str, notebook: NotebookItem) -> str:
    """A test's name in the notebook's run: ``test_f`` in its single run, ``test_f[small]``
    in parameter set "small", and ``test_f[1-small]`` for a case, as stacked
    ``parametrize`` ids join."""
    if notebook.parameters is None:
        return test_id
    if test_id.endswith("]"):
        return f"{test_id[:-1]}-{notebook.parameters.id}]"
    return f"{test_id}[{notebook.parameters.id}]"
