"""What CI shows people: one record per notebook run, and the reports made from them.

A ``RunRecord`` is plain data, built where the run happened and handed to the process
that writes the reports (under xdist, the controller sees every worker's records), so
GitHub annotations, the step summary and the HTML report are written once, from the
same facts. Nothing here imports pytest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

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
        return record


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
