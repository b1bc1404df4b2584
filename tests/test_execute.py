"""The executor interface and its local backend, without pytest in the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbharness.errors import CellError, NbHarnessError
from nbharness.execute import Run, get_executor
from nbharness.execute.local import LocalExecutor

from .helpers import build_notebook


def run_of(tmp_path: Path, cells: list[str | dict[str, object]], timeout: float = 30) -> Run:
    return Run(tmp_path / "nb.ipynb", build_notebook(cells), tmp_path, timeout)


def test_unknown_executor_names_the_known_ones():
    with pytest.raises(NbHarnessError, match=r"unknown executor 'nope' \(known: .*local"):
        get_executor("nope")


def test_local_is_the_builtin_executor():
    assert isinstance(get_executor("local"), LocalExecutor)


def test_executed_notebook_holds_only_this_runs_outputs(tmp_path):
    run = run_of(tmp_path, ["print('fresh')", "x = 1"])
    run.notebook.cells[1].outputs = [{"output_type": "stream", "name": "stdout", "text": "stale"}]
    run.notebook.cells[1].execution_count = 41
    with LocalExecutor() as executor:
        result = executor.execute(run)
    assert result.error is None
    assert result.notebook.cells[0].outputs[0]["text"] == "fresh\n"
    assert result.notebook.cells[1].outputs == []
    assert result.notebook.cells[1].execution_count == 2
    assert run.notebook.cells[1].execution_count == 41, "the input notebook is left alone"


def test_a_clean_exit_is_reported_as_exited_early(tmp_path):
    with LocalExecutor() as executor:
        result = executor.execute(run_of(tmp_path, ["import sys\nsys.exit(0)", "1/0"]))
    assert result.error is None
    assert result.exited_early
    assert result.notebook.cells[1].execution_count is None


def test_an_error_carries_the_cell_and_its_traceback(tmp_path):
    with LocalExecutor() as executor:
        result = executor.execute(run_of(tmp_path, ["x = 1", "x.missing"]))
    assert isinstance(result.error, CellError)
    assert (result.error.index, result.error.execution_count) == (1, 2)
    assert result.error.ename == "AttributeError"
    assert result.error.traceback


def test_cells_tagged_to_raise_that_did_not_are_listed(tmp_path):
    cells: list[str | dict[str, object]] = [
        {"source": "1/0", "tags": ["raises-exception"]},
        {"source": "y = 2", "tags": ["raises-exception"]},
    ]
    with LocalExecutor() as executor:
        result = executor.execute(run_of(tmp_path, cells))
    assert result.error is None
    assert result.unraised == [1]
