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

from ..errors import ProblemList
from ..notebook.cellmarks import SKIP
from ..text import cell_text
from .findings import Finding


class ExecutionOrderError(ProblemList):
    """The stored outputs could not come from one clean top-to-bottom run."""

    lead = "not run top to bottom in one fresh kernel: "


def order_problems(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """What is wrong with the stored execution order, one sentence per cause."""
    return [finding.sentence for finding in order_findings(cells)]


def order_findings(cells: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """The same, with their codes (NBH2xx), top to bottom."""
    return sorted(_findings(cells), key=lambda f: f.cell)


def _findings(cells: Sequence[Mapping[str, Any]]) -> list[Finding]:
    findings: list[Finding] = []
    ran: list[tuple[int, int]] = []  # (cell number, execution count)
    not_run: list[int] = []
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code" or not cell_text(cell.get("source", "")).strip():
            continue
        count = cell.get("execution_count")
        outputs = cell.get("outputs") or []
        if count is None:
            if outputs:
                text = "has outputs but no execution count"
                findings.append(Finding(number, "NBH206", f"cell {number}", text))
            elif not SKIP.on(cell):
                not_run.append(number)
            continue
        for output in outputs:
            stale = output.get("execution_count")
            if output.get("output_type") == "execute_result" and stale not in (None, count):
                text = f"shows the result of an earlier run (Out [{stale}])"
                findings.append(Finding(number, "NBH207", f"cell {number} (In [{count}])", text))
        ran.append((number, count))
    if not ran:
        return []  # counts stripped (nbdev, nbstripout --keep-output): nothing to judge
    findings += _sequence_problems(ran)
    last = ran[-1][0]
    skipped = [number for number in not_run if number < last]
    if skipped:
        text = f"did not run, but cell {last} below did"
        findings.append(Finding(skipped[0], "NBH208", _cells(skipped), text))
    return findings


def _sequence_problems(ran: list[tuple[int, int]]) -> list[Finding]:
    """Problems in the counts of the cells that ran: repeats, cells run out of order (the
    fewest cells whose moving explains the order), and counts missing from the notebook."""
    findings = []
    seen: dict[int, int] = {}  # count -> first cell showing it
    unique = []
    for number, count in ran:
        if count in seen:
            where = f"cells {seen[count]} and {number}"
            findings.append(Finding(seen[count], "NBH203", where, f"both show In [{count}]"))
        else:
            seen[count] = number
            unique.append((number, count))
    findings += _out_of_order(unique)
    counts = sorted(seen)
    if counts[0] != 1:
        first = counts[0]
        earlier = f"{first - 1} other execution{'s' if first > 2 else ''}"
        text = (
            f"is In [{first}], not In [1]: {earlier} came first "
            "(cells run and then deleted, or a kernel that was not fresh)"
        )
        findings.append(Finding(seen[first], "NBH205", f"cell {seen[first]}", text))
    for low, high in itertools.pairwise(counts):
        if high > low + 1:
            missing = f"In [{low + 1}]" if high == low + 2 else f"In [{low + 1}] to In [{high - 1}]"
            text = (
                f"not in the notebook, between cell {seen[low]} (In [{low}]) and "
                f"cell {seen[high]} (In [{high}]): a cell run twice, or run and then deleted"
            )
            findings.append(Finding(min(seen[low], seen[high]), "NBH204", missing, text))
    return findings


def _out_of_order(ran: list[tuple[int, int]]) -> list[Finding]:
    """One finding per cell outside the longest run of rising counts (earliest cells kept
    on a tie): two cells re-run at the end are two findings, not one per cell below them."""
    in_order = set(_longest_rising(ran))
    findings = []
    for position, (number, count) in enumerate(ran):
        if position in in_order:
            continue
        above = [ran[i] for i in sorted(in_order) if i < position and ran[i][1] > count]
        below = [ran[i] for i in sorted(in_order) if i > position and ran[i][1] < count]
        where = f"cell {number} (In [{count}])"
        if above:
            other, other_count = above[-1]
            text = f"ran before cell {other} (In [{other_count}])"
            findings.append(Finding(min(number, other), "NBH201", where, text))
        else:
            other, other_count = below[0]
            text = f"ran after cell {other} (In [{other_count}]) below it"
            findings.append(Finding(min(number, other), "NBH202", where, text))
    return findings


def _longest_rising(ran: list[tuple[int, int]]) -> list[int]:
    """Positions of the longest strictly rising run of counts; on a tie, the earliest cells."""
    longest_from = [1] * len(ran)
    for i in range(len(ran) - 1, -1, -1):
        for j in range(i + 1, len(ran)):
            if ran[j][1] > ran[i][1]:
                longest_from[i] = max(longest_from[i], longest_from[j] + 1)
    picked: list[int] = []
    wanted = max(longest_from, default=0)
    for i, length in enumerate(longest_from):
        if length == wanted and (not picked or ran[i][1] > ran[picked[-1]][1]):
            picked.append(i)
            wanted -= 1
    return picked


def _cells(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"cell {numbers[0]}"
    return "cells " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"
