"""Checks of what a run produced, or of a notebook as stored: outputs, execution order, coverage.

``verify`` decides whether a finished run passes. It is pure: the run's facts in, a
``Verdict`` out; the caller emits its warnings and writes what it says to store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import IMPORT_ERRORS, CellError, MissingException, MissingImports, NbHarnessError
from ..notebook.cellmarks import is_injected
from ..notebook.io import as_node
from .compare import compare_outputs

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from ..config.settings import Settings
    from ..execute import RunResult


@dataclass(frozen=True)
class Verdict:
    """What a finished run comes to."""

    #: Why the run fails, or ``None`` when it passes.
    problem: NbHarnessError | None = None
    #: Things worth a warning about a run that stands (a tagged cell that raised nothing).
    warnings: tuple[str, ...] = ()
    #: ``--nb-update-outputs``: the executed user cells to write back into the notebook.
    to_store: NotebookNode | None = None


def verify(
    result: RunResult, stored: NotebookNode, settings: Settings, *, parameterized: bool = False
) -> Verdict:
    """Whether ``result`` (a run of ``stored``) passes under ``settings``.

    A run with a parameter set is not held to the stored outputs: they came from other values.
    """
    warnings = tuple(result.warnings)
    if settings.find_import_errors and result.error is None:
        # Every other cell error is beside the point; broken set-up code is not.
        problem = injected_error(result.notebook) or failed_imports(result.notebook)
        return Verdict(problem, warnings)
    if result.error is not None:
        return Verdict(result.error, warnings)
    unraised = unraised_cells(result)
    if unraised and settings.strict_raises:
        return Verdict(unraised[0], warnings)
    warnings += tuple(problem.summary for problem in unraised)
    if parameterized:
        return Verdict(None, warnings)
    executed = user_cells(result.notebook)
    if settings.update_outputs:
        return Verdict(None, warnings, to_store=executed)
    return Verdict(outputs_problem(stored, executed, settings), warnings)


def outputs_problem(
    stored: NotebookNode, executed: NotebookNode, settings: Settings
) -> NbHarnessError | None:
    """The executed outputs against the stored ones: every cell with ``--nb-compare``,
    else only the cells marked check-output (nbval-lax)."""
    nbreg = stored.metadata.get("nbreg") or {}
    ignore = nbreg.get("diff_ignore", []) if isinstance(nbreg, dict) else []
    replace = nbreg.get("diff_replace", []) if isinstance(nbreg, dict) else []
    only_marked = not settings.compare.enabled
    return compare_outputs(
        stored.cells, executed.cells, settings.compare, only_marked, ignore, replace
    )


def user_cells(executed: NotebookNode) -> NotebookNode:
    """The executed notebook without the cells added to the run: the user's cells only."""
    cells = [cell for cell in executed.cells if not is_injected(cell)]
    user: NotebookNode = as_node({**executed, "cells": cells})
    return user


def unraised_cells(result: RunResult) -> list[MissingException]:
    """The cells tagged to raise that raised nothing."""
    problems = []
    for index in result.unraised:
        cell = result.notebook.cells[index]
        problems.append(MissingException(index, cell.source, cell.get("execution_count")))
    return problems


def injected_error(nb: NotebookNode) -> CellError | None:
    """An error raised by code added to the run (nbmake's post_cell_execute, say)."""
    for index, cell in enumerate(nb.cells):
        if not is_injected(cell):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return CellError.from_output(index, cell, out)
    return None


def failed_imports(nb: NotebookNode) -> MissingImports | None:
    """``--nb-find-import-errors``: every import that failed, with its cell."""
    found = [
        f"cell {number} (In [{cell.execution_count}]): {out['ename']}: {out['evalue']}"
        for number, cell in enumerate(nb.cells, start=1)
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error" and out.get("ename") in IMPORT_ERRORS
    ]
    return MissingImports(found) if found else None
