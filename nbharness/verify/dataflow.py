"""The cell dataflow lint: would a clean top-to-bottom run find every name it reads?

Each code cell is read statically for the names it defines and uses (``cellnames``), then
the cells are walked top to bottom as "Restart & Run All" would run them. A name read
before any cell above defines it raises ``NameError`` in a clean run; a name no cell
defines lived only in a deleted cell or an old kernel. The same walk gives the graph of
which cells depend on which, for the freshness check.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from ..notebook.cellmarks import RAISES, SKIP
from ..text import cell_text
from .cellnames import CellNames, cell_names
from .findings import Finding

#: What IPython puts in every kernel's namespace, and the module attributes a run sets.
KERNEL_NAMES = frozenset(
    {
        *dir(builtins),
        *("display", "get_ipython", "In", "Out", "exit", "quit", "_", "__", "___"),
        *("_i", "_ii", "_iii", "_ih", "_oh", "_dh", "__file__", "__vsc_ipynb_file__"),
        *("__name__", "__doc__", "__builtins__", "__spec__", "__loader__", "__package__"),
    }
)


def _known(name: str) -> bool:
    """IPython's numbered history too: ``_3`` and ``_i3``."""
    return name in KERNEL_NAMES or (name.startswith(("_", "_i")) and name.lstrip("_i").isdigit())


def code_cells(cells: Sequence[Mapping[str, Any]]) -> list[tuple[int, CellNames]]:
    """``(cell number, names)`` for each non-empty code cell a run executes, numbered as
    Jupyter shows them. A cell expected to raise may fail on purpose: it is read for what
    it defines, not for what it uses."""
    read = []
    for number, cell in enumerate(cells, start=1):
        text = cell_text(cell.get("source", ""))
        if cell.get("cell_type") != "code" or not text.strip() or SKIP.on(cell):
            continue
        names = cell_names(text)
        if RAISES.on(cell):
            names.now, names.late = [], set()
        read.append((number, names))
    return read


def dataflow_findings(cells: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """Names a clean run would not find, one finding per name and cell, top to bottom."""
    read = code_cells(cells)
    labels = {number: label(number, cells[number - 1]) for number, _ in read}
    definers: dict[str, list[int]] = {}
    for number, names in read:
        for name in names.defines:
            definers.setdefault(name, []).append(number)
    findings: list[Finding] = []
    live: set[str] = set()
    deleted_by: dict[str, int] = {}
    used_by: dict[str, int] = {}
    opaque_above = False
    for number, names in read:
        opaque_above |= names.opaque
        for name in names.now:
            if name in live or _known(name):
                if name in live:
                    used_by.setdefault(name, number)
                continue
            if opaque_above:
                continue
            later = [n for n in definers.get(name, []) if n >= number]
            if later:
                who = "this cell" if later[0] == number else f"cell {later[0]}"
                text = f"'{name}' is used before {who} defines it"
                findings.append(Finding(number, "NBH101", labels[number], text))
            elif name in deleted_by:
                text = f"'{name}' is used after cell {deleted_by[name]} deletes it"
                findings.append(Finding(number, "NBH104", labels[number], text))
            else:
                text = f"no cell defines '{name}'"
                findings.append(Finding(number, "NBH102", labels[number], text))
        for name in sorted(names.defines & live):
            if name in used_by and used_by[name] < number:
                text = (
                    f"'{name}' is redefined after cell {used_by[name]} used it: "
                    f"re-running cell {used_by[name]} now would give another result"
                )
                findings.append(Finding(number, "NBH103", labels[number], text))
                del used_by[name]
        live |= names.defines
        live -= names.deletes
        for name in names.deletes:
            deleted_by[name] = number
    if not any(names.opaque for _, names in read):
        for number, names in read:
            for name in sorted(names.late):
                if name not in definers and not _known(name):
                    text = f"no cell defines '{name}', which a function here reads"
                    findings.append(Finding(number, "NBH102", labels[number], text))
    return findings


def dependents(cells: Sequence[Mapping[str, Any]], changed: set[int]) -> set[int]:
    """Cells (numbers) below the ``changed`` ones whose results may depend on them: they
    read or change a name a changed cell defines or changes, directly or through other
    cells. A cell whose names cannot be read (``import *``, ``%run``) taints all below."""
    tainted: set[str] = set()
    below: set[int] = set()
    everything = False
    for number, names in code_cells(cells):
        touches = set(names.now) | names.late | names.mutates
        if number in changed or everything or touches & tainted:
            if number not in changed:
                below.add(number)
            everything |= names.opaque
            tainted |= names.defines | names.mutates | names.deletes
    return below


def label(number: int, cell: Mapping[str, Any]) -> str:
    count = cell.get("execution_count")
    return f"cell {number}" + (f" (In [{count}])" if isinstance(count, int) else "")
