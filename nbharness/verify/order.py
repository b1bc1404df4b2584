"""The execution-order lint: could these stored outputs come from one clean run?

A clean run ("Restart & Run All") executes the non-empty code cells top to bottom in a
fresh kernel, so their execution counts read 1, 2, 3, … with every cell before the last
one run. Anything else means hidden state: cells run out of order or twice, cells deleted
or added after the run, outputs pasted in. This reads stored metadata only; it runs nothing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ProblemList
from ..notebook.cellmarks import SKIP


class ExecutionOrderError(ProblemList):
    """The stored outputs could not come from one clean top-to-bottom run."""

    lead = "not run top to bottom in one fresh kernel: "


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
            elif not SKIP.on(cell):
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
    if not ran:
        return []  # counts stripped (nbdev, nbstripout --keep-output): nothing to judge
    problems += _sequence_problems(ran)
    if ran:
        last = ran[-1][0]
        skipped = [number for number in not_run if number < last]
        if skipped:
            problems.append(f"{_cells(skipped)} did not run, but cell {last} below did")
    return sorted(problems, key=_first_cell)


def _first_cell(problem: str) -> int:
    """The first cell a problem names, to list problems top to bottom."""
    match = re.search(r"cells? (\d+)", problem)
    return int(match.group(1)) if match else 0


def _sequence_problems(ran: list[tuple[int, int]]) -> list[str]:
    """Problems in the counts of the cells that ran, each named once, top to bottom."""
    problems = []
    highest: tuple[int, int] | None = None  # (cell, count) with the highest count above
    seen: dict[int, int] = {}  # count -> first cell showing it
    for number, count in ran:
        if count in seen:
            problems.append(f"cells {seen[count]} and {number} both show In [{count}]")
        elif highest is not None and count < highest[1]:
            problems.append(
                f"cell {number} (In [{count}]) ran before cell {highest[0]} (In [{highest[1]}])"
            )
        seen.setdefault(count, number)
        if highest is None or count > highest[1]:
            highest = (number, count)
    counts = sorted(seen)
    if counts and counts[0] != 1:
        first = counts[0]
        earlier = f"{first - 1} other execution{'s' if first > 2 else ''}"
        problems.append(
            f"cell {seen[first]} is In [{first}], not In [1]: {earlier} came first "
            "(cells run and then deleted, or a kernel that was not fresh)"
        )
    for low, high in itertools.pairwise(counts):
        if high > low + 1:
            missing = f"In [{low + 1}]" if high == low + 2 else f"In [{low + 1}] to In [{high - 1}]"
            problems.append(
                f"{missing} not in the notebook, between cell {seen[low]} (In [{low}]) and "
                f"cell {seen[high]} (In [{high}]): a cell run twice, or run and then deleted"
            )
    return problems


def _cells(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"cell {numbers[0]}"
    return "cells " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)
