"""What CI shows people: one record per notebook run, and the reports made from them.

A ``RunRecord`` is plain data, built where the run happened and handed to the process
that writes the reports (under xdist, the controller sees every worker's records), so
GitHub annotations, the step summary and the HTML report are written once, from the
same facts. Nothing here imports pytest.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..notebook.cellmarks import is_injected
from ..text import cell_text
from ..verify.compare import CompareSettings, differing_cells

#: Outcomes in the order reports list them: what needs a look first.
OUTCOME_ORDER = ("failed", "error", "xpassed", "passed", "xfailed", "skipped")


@dataclass
class RunRecord:
    """One notebook test as CI reports it. Paths are relative to pytest's rootdir."""

    nodeid: str
    #: The notebook's path and parameter set, as the test's headline names it.
    title: str
    notebook: str
    outcome: str
    duration: float = 0.0
    #: Skipped by ``--nb-cache`` because nothing changed since it passed.
    cached: bool = False
    #: The failure's (or skip's) one-line reason.
    reason: str = ""
    #: The paired script and its failing line, when the notebook has one.
    script: str = ""
    line: int | None = None
    #: The whole failure report as pytest shows it (source, traceback, details).
    report: str = ""
    #: Output regression: one unified diff per differing cell, ``(where, lines)``.
    diffs: list[tuple[str, list[str]]] = field(default_factory=list)
    #: Output regression's images: ``(where, stored, fresh)``, each a list of data URLs.
    images: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    #: The ``--nb-output-dir`` copy of the executed notebook, if one was written.
    executed_path: str = ""
    #: The executed notebook as JSON, kept only for the HTML report.
    executed: str = ""
    #: The failing cell's index in the executed notebook (injected cells counted).
    failed_cell: int | None = None

    @property
    def failing(self) -> bool:
        return self.outcome in ("failed", "error")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only: this crosses from an xdist worker to the controller."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        record = cls(**{key: value for key, value in data.items() if key in known})
        record.diffs = [(str(where), list(lines)) for where, lines in record.diffs]
        record.images = [(str(w), list(old), list(new)) for w, old, new in record.images]
        return record


def changed_images(
    stored: Mapping[str, Any], executed: Mapping[str, Any], settings: CompareSettings
) -> list[tuple[str, list[str], list[str]]]:
    """The images of each cell whose outputs differ, stored and fresh, to show side by side.

    The cells are the ones output regression finds different (``differing_cells``), so with
    images compared by hash a changed plot is here, and with images skipped it is not.
    """
    fresh = [cell for cell in executed.get("cells", []) if not is_injected(cell)]
    old_cells = stored.get("cells", [])
    if len(fresh) != len(old_cells):
        return []
    changes = []
    for index in sorted(differing_cells(old_cells, fresh, settings)):
        before, after = _images(old_cells[index]), _images(fresh[index])
        if before or after:
            changes.append((f"cell {index + 1}", before, after))
    return changes


def _images(cell: Mapping[str, Any]) -> list[str]:
    """A cell's image outputs as data URLs."""
    urls = []
    for out in cell.get("outputs", []):
        data: Mapping[str, Any] = out.get("data", {})
        for mime in ("image/png", "image/jpeg", "image/gif"):
            if mime in data:
                urls.append(f"data:{mime};base64,{cell_text(data[mime]).strip()}")
        if "image/svg+xml" in data:
            svg = base64.b64encode(cell_text(data["image/svg+xml"]).encode()).decode()
            urls.append(f"data:image/svg+xml;base64,{svg}")
    return urls


def in_report_order(records: list[RunRecord]) -> list[RunRecord]:
    """Failures first, then by outcome, then by test id."""
    rank = {outcome: n for n, outcome in enumerate(OUTCOME_ORDER)}
    return sorted(records, key=lambda r: (rank.get(r.outcome, len(rank)), r.nodeid))


def counts(records: list[RunRecord]) -> list[tuple[str, int]]:
    """How many runs had each outcome (cached skips counted on their own), in report order."""
    tally: dict[str, int] = {}
    for record in records:
        key = "cached" if record.cached else record.outcome
        tally[key] = tally.get(key, 0) + 1
    order = [*OUTCOME_ORDER, "cached"]
    return sorted(tally.items(), key=lambda item: order.index(item[0]))
