"""The execution-order lint: could these stored outputs come from one clean run?

A clean run ("Restart & Run All") executes the non-empty code cells top to bottom in a
fresh kernel, so their execution counts read 1, 2, 3, … with every cell before the last
one run. Anything else means hidden state: cells run out of order or twice, cells deleted
or added after the run, outputs pasted in. This reads stored metadata only; it runs nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import NbHarnessError


class ExecutionOrderError(NbHarnessError):
    """The stored outputs could not come from one clean top-to-bottom run."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"not run top to bottom in one fresh kernel: {problems[0]}{more}")

    def details(self) -> list[str]:
        return [f"- {problem}" for problem in self.problems]

    def __reduce__(self) -> tuple[type, tuple[list[str]]]:
        return (type(self), (self.problems,))


#: Cells a clean run leaves alone on purpose.
NOT_RUN_TAGS = {"skip-execution"}


def order_problems(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """What is wrong with the stored execution order, one sentence per problem."""
    problems: list[str] = []
    ran: list[tuple[int, int]] = []  # (cell number, execution count)
    not_run: list[int] = []
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code" or not _source(cell).strip():
            continue
        count = cell.get("execution_count")
        outputs = cell.get("outputs") or []
        if count is None:
            if outputs:
                problems.append(f"cell {number} has outputs but no execution count")
            elif not NOT_RUN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
                not_run.append(number)
            continue
        for output in outputs:
            stale = output.get("execution_count")
            if output.get("output_type") == "execute_result" and stale not in (None, count):
                problems.append(
                    f"cell {number} (In [{count}]) shows the result of an earlier run "
                    f"(Out [{stale}])"
                )
        ran.append((number, count))
    problems += _sequence_problems(ran)
    if ran:
        last = ran[-1][0]
        skipped = [number for number in not_run if number < last]
        if skipped:
            problems.append(f"{_cells(skipped)} did not run, but cell {last} below did")
    return problems


def _sequence_problems(ran: list[tuple[int, int]]) -> list[str]:
    problems = []
    if ran and ran[0][1] != 1:
        number, count = ran[0]
        earlier = f"{count - 1} other execution{'s' if count > 2 else ''}"
        problems.append(
            f"cell {number} is In [{count}], not In [1]: {earlier} came first "
            "(cells run and then deleted, or a kernel that was not fresh)"
        )
    for (before, count_before), (after, count_after) in itertools.pairwise(ran):
        if count_after < count_before:
            problems.append(
                f"cell {after} (In [{count_after}]) ran before cell {before} (In [{count_before}])"
            )
        elif count_after == count_before:
            problems.append(f"cells {before} and {after} both show In [{count_after}]")
        elif count_after > count_before + 1:
            between = count_after - count_before - 1
            problems.append(
                f"{between} execution{'s' if between > 1 else ''} happened between cell {before} "
                f"(In [{count_before}]) and cell {after} (In [{count_after}]): a cell run twice, "
                "or run and then deleted"
            )
    return problems


def _cells(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"cell {numbers[0]}"
    return "cells " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)
