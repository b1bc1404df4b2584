"""Rendering failures: pure functions, no kernel needed."""

from __future__ import annotations

import pickle
from pathlib import Path

import nbformat
import pytest

from nbharness.config.project import ConfigError
from nbharness.errors import (
    CellError,
    CellTimeout,
    CodeError,
    InvalidNotebook,
    KernelDied,
    KernelNotFound,
    KernelStartFailed,
    MissingException,
    MissingImports,
    NotebookFailed,
    ProblemList,
)
from nbharness.notebook.cellmarks import INJECTED
from nbharness.notebook.io import NotWritten
from nbharness.plan.parameters import ParameterError
from nbharness.report import clean_traceback, failing_line, locate, numbered_source, render
from nbharness.text import cell_text, first_line, strip_ansi
from nbharness.verify.compare import OutputMismatch
from nbharness.verify.order import ExecutionOrderError

from .helpers import build_notebook

# What ipykernel sends for ``ratio(1, 0)`` in cell In[3], colour codes and all.
TRACEBACK = [
    "\x1b[31m---------------------------------------------------------------------------\x1b[39m",
    "\x1b[31mZeroDivisionError\x1b[39m                         Traceback (most recent call last)",
    "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[3]\x1b[39m\x1b[32m, line 2\x1b[39m\n"
    "\x1b[32m      1\x1b[39m x = 1\n\x1b[32m----> \x1b[39m\x1b[32m2\x1b[39m ratio(x, 0)\n",
    "\x1b[36mFile \x1b[39m\x1b[32m/env/lib/python3.11/site-packages/ipykernel/"
    "kernelbase.py:1514\x1b[39m"
    ", in \x1b[36mKernel.raw_input\x1b[39m\n   1514 raise\n",
    "\x1b[31mZeroDivisionError\x1b[39m: division by zero",
]


def cell_error(**overrides: object) -> CellError:
    fields: dict[str, object] = {
        "index": 4,
        "source": "x = 1\nratio(x, 0)\nprint(x)",
        "execution_count": 3,
        "ename": "ZeroDivisionError",
        "evalue": "division by zero",
        "traceback": TRACEBACK,
    }
    fields.update(overrides)
    return CellError(**fields)  # type: ignore[arg-type]


def test_numbered_source_puts_the_arrow_on_the_failing_line():
    assert numbered_source("a\nb\nc", 2) == ["    1 | a", "--> 2 | b", "    3 | c"]


def test_numbered_source_pads_numbers_and_handles_an_empty_cell():
    rows = numbered_source("\n".join(f"line{n}" for n in range(1, 11)), None)
    assert rows[0] == "     1 | line1"
    assert rows[-1] == "    10 | line10"
    assert numbered_source("", None) == ["    1 |"]


def test_failing_line_comes_from_the_cells_own_frame():
    assert failing_line(cell_error()) == 2
    assert failing_line(cell_error(source="\n  \nx = 1\nratio(x, 0)")) == 4
    assert failing_line(cell_error(execution_count=7)) is None
    assert failing_line(cell_error(traceback=[])) is None


def test_clean_traceback_strips_colour_and_kernel_frames():
    lines = clean_traceback(TRACEBACK)
    assert not any("\x1b" in line for line in lines)
    assert not any("kernelbase.py" in line for line in lines)
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert any("kernelbase.py" in line for line in clean_traceback(TRACEBACK, True))


@pytest.mark.parametrize(
    ("error", "first_line"),
    [
        (cell_error(), "cell 5 (In [3]) raised ZeroDivisionError: division by zero"),
        (cell_error(ename="SystemExit", evalue="2"), "cell 5 (In [3]) called sys.exit(2)"),
        (
            cell_error(ename="KeyboardInterrupt", evalue=""),
            "cell 5 (In [3]) raised KeyboardInterrupt",
        ),
        (
            CellTimeout(0, "sleep()", None, timeout=2.5),
            "cell 1 did not finish within the cell timeout of 2.5 s; the kernel was stopped",
        ),
        (
            KernelDied(1, "boom()", 2, stderr="Segmentation fault"),
            "kernel died while running cell 2 (In [2])",
        ),
        (
            KernelNotFound("ir", ["python3", "julia"]),
            "kernel 'ir' from the notebook's kernelspec is not installed (installed: julia, "
            "python3); run with --nb-kernel NAME to override it",
        ),
    ],
)
def test_the_first_line_is_the_one_line_summary(error, first_line):
    assert render(error).splitlines()[0] == first_line


def test_long_report_has_source_and_traceback_short_has_source_only():
    long = render(cell_error())
    assert "--> 2 | ratio(x, 0)" in long
    assert "Traceback (kernel frames trimmed):" in long
    short = render(cell_error(), style="short")
    assert "--> 2 | ratio(x, 0)" in short
    assert "Traceback" not in short


def test_a_dead_kernels_report_ends_with_what_the_kernel_printed():
    report = render(KernelDied(0, "crash()", 1, stderr="one\ntwo"))
    assert report.splitlines()[-3:] == ["Kernel stderr (last lines):", "one", "two"]


@pytest.mark.parametrize(
    "error",
    [
        cell_error(),
        CellTimeout(0, "x", 1, timeout=3.0, limit="the cell timeout of 3 s (--nb-timeout)"),
        KernelDied(0, "x", 1, stderr="e", how="killed by SIGKILL"),
        MissingException(index=2, source="x", execution_count=None),
        KernelNotFound("ir", ["python3"], where="on the hub", source="--nb-kernel"),
        InvalidNotebook(Path("a.ipynb"), "schema error: 'cells' is a required property"),
        NotWritten(Path("a.ipynb"), "read-only"),
        ConfigError(Path("pyproject.toml"), "[tool.nbharness] export-root", "unknown key"),
        ParameterError("parameter 'n' of set 'big' is not defined"),
        KernelStartFailed("kernel did not start"),
        NotebookFailed("a.ipynb: cell 1 raised ValueError"),
        CodeError("'f()' raised ValueError"),
        ProblemList(["one", "two"]),
        MissingImports(["cell 1 (In [1]): ModuleNotFoundError: No module named 'x'"]),
        ExecutionOrderError(["cell 2 ran before cell 1", "cell 3 never ran"]),
        OutputMismatch([("cell 2 (In [2])", ["-1", "+2"]), ("cell 3", ["-a", "+b"])]),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle_from_their_constructor_arguments(error):
    """pytest-xdist sends errors from workers to the controller: nothing may be lost."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.summary == error.summary
    assert str(copy) == str(error) == error.summary
    assert render(copy) == render(error)
    assert "__reduce__" not in type(error).__dict__


def executed_with_injected_cell() -> nbformat.NotebookNode:
    """Five cells as run: an injected one second, the failing cell (In [3]) fifth."""
    nb = build_notebook(
        [
            {"source": "def ratio(a, b): return a / b", "count": 1},
            {"source": "x = 0", "tags": [INJECTED], "count": 2},
            {"markdown": "notes"},
            "# skipped",
            {"source": "x = 1\nratio(x, 0)\nprint(x)", "count": 3},
        ]
    )
    return nb


def test_locate_counts_cells_as_the_user_notebook_has_them():
    located = locate(cell_error(), executed_with_injected_cell(), build_notebook(["x"]))
    assert isinstance(located, CellError)
    assert located.summary == "cell 4 (In [3]) raised ZeroDivisionError: division by zero"


def test_locate_names_traceback_frames_as_the_summary_does():
    frame = "Cell In[1], line 1, in ratio(a, b)\n----> 1 def ratio(a, b): return a / b\n"
    error = cell_error(traceback=[*TRACEBACK[:3], frame, TRACEBACK[-1]])
    located = locate(error, executed_with_injected_cell(), build_notebook(["x"]))
    text = render(located)
    assert "cell 4 (In [3]), line 2" in text
    assert "cell 1 (In [1]), line 1, in ratio(a, b)" in text
    assert "Cell In[" not in text
    assert isinstance(located, CellError)
    assert failing_line(located) == 2


def test_locate_names_a_cell_added_to_the_run():
    located = locate(
        cell_error(index=1, execution_count=2), executed_with_injected_cell(), build_notebook(["x"])
    )
    assert located.summary.startswith("code run after cell 1 (nbmake's mock")


def test_text_helpers_read_nbformat_strings_first_lines_and_colour_codes():
    assert cell_text(["x = 1\n", "y = 2"]) == "x = 1\ny = 2"
    assert cell_text("x") == "x"
    assert first_line("\n  KeyError: 'cells'\n  more") == "KeyError: 'cells'"
    assert first_line(" \n", default="unknown error") == "unknown error"
    assert strip_ansi("\x1b[31mZeroDivisionError\x1b[39m") == "ZeroDivisionError"
