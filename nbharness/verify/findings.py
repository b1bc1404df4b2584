"""Findings of the lints that read stored notebooks: a code per rule, as ruff and
``marimo check`` have, so that tools can select, ignore and parse them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

#: Every rule: its code and what it finds. Codes in ``OPT_IN`` run only when selected.
RULES = {
    "NBH101": "a name used before the cell that defines it",
    "NBH102": "a name no cell defines",
    "NBH103": "a name redefined after a cell above used it",
    "NBH104": "a name used after a cell deleted it",
    "NBH201": "a cell ran before a cell above it",
    "NBH202": "a cell re-ran after cells below it",
    "NBH203": "two cells show the same execution count",
    "NBH204": "execution counts missing between two cells",
    "NBH205": "the first cell is not In [1]",
    "NBH206": "outputs without an execution count",
    "NBH207": "a result from an earlier run",
    "NBH208": "an unrun cell above run ones",
    "NBH301": "no freshness record",
    "NBH302": "a cell edited since its outputs were stored",
    "NBH303": "outputs computed from an earlier version of a cell above",
    "NBH304": "outputs that are not those of the recorded run",
    "NBH305": "the record is for another kernel",
    "NBH306": "a file the recorded run read changed since",
}
#: Rules that are right but noisy on clean notebooks (``df = df.dropna()`` after a cell
#: showed ``df``): reported only when ``--select`` names them.
OPT_IN = frozenset({"NBH103"})


class Finding(NamedTuple):
    """One problem in one notebook, at the first cell it names (``cell`` counts every
    cell from 1, as Jupyter shows them); ``where`` and ``text`` make one sentence."""

    cell: int  # 0: the whole notebook
    code: str
    where: str  # "" for the whole notebook
    text: str

    @property
    def sentence(self) -> str:
        return f"{self.where} {self.text}".lstrip()

    @property
    def coded(self) -> str:
        """``cell 3 (In [2]) NBH101 'x' is used before cell 5 defines it``."""
        return f"{self.where} {self.code} {self.text}".lstrip()

    def line(self, path: str) -> str:
        return f"{path}: {self.coded}"

    def as_json(self, path: str) -> dict[str, object]:
        return {"path": path, "cell": self.cell, "code": self.code, "message": self.sentence}


def selected(
    findings: Iterable[Finding], select: Iterable[str] = (), ignore: Iterable[str] = ()
) -> list[Finding]:
    """The findings ``--select`` and ``--ignore`` keep (prefixes, as ruff: ``NBH1``),
    top to bottom; opt-in rules only when selected by their own code."""
    chosen, dropped = tuple(select), tuple(ignore)
    kept = [
        finding
        for finding in findings
        if (finding.code.startswith(chosen) if chosen else True)
        and not (finding.code in OPT_IN and finding.code not in chosen)
        and not (dropped and finding.code.startswith(dropped))
    ]
    return sorted(kept, key=lambda finding: finding.cell)


def unknown_codes(prefixes: Iterable[str]) -> list[str]:
    """The ``--select``/``--ignore`` values that match no rule."""
    return [p for p in prefixes if not any(code.startswith(p) for code in RULES)]
