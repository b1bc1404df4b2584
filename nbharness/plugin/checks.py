"""Items that check a notebook as stored, running no kernel: order, dataflow, freshness,
exports, pairing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ..errors import NbHarnessError, ProblemList
from ..notebook.io import is_python, stated_language
from ..vcs.export import ExportOutOfDate, modules_of, stale_modules
from ..vcs.sync import pairing_problem
from ..verify.dataflow import dataflow_findings
from ..verify.findings import Finding, selected
from ..verify.freshness import freshness_findings
from ..verify.order import ExecutionOrderError, order_findings
from .items import NotebookItemBase, pairing_for, project_for

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from ..notebook.io import StoredNotebook

#: Name of the execution-order lint's item: ``analysis.ipynb::execution-order``.
ORDER_ITEM = "execution-order"
#: Name of the export check's item: ``analysis.ipynb::export``.
EXPORT_ITEM = "export"
DATAFLOW_ITEM = "dataflow"
FRESH_ITEM = "fresh"
PAIRING_ITEM = "pairing"


class BrokenNotebookItem(NotebookItemBase):
    """Stands in for a notebook that cannot be planned, and fails with the reason."""

    def __init__(self, *, error: NbHarnessError, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.error = error

    def runtest(self) -> None:
        raise self.error


class _StoredNotebookItem(NotebookItemBase):
    """A check of the notebook as stored: it runs no kernel."""

    def __init__(self, *, stored: StoredNotebook, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.stored = stored

    @property
    def notebook(self) -> NotebookNode:
        return self.stored.node


class ExecutionOrderItem(_StoredNotebookItem):
    """The execution-order lint of one notebook: reads stored counts, runs nothing."""

    def runtest(self) -> None:
        problems = [finding.coded for finding in order_findings(self.notebook.cells)]
        if problems:
            raise ExecutionOrderError(problems)

    def headline(self) -> str:
        return f"{self.nodeid.split('::')[0]} (execution order)"


class DataflowError(ProblemList):
    """Names a clean top-to-bottom run would not find."""

    lead = "a clean run would not find every name: "


class StaleOutputs(ProblemList):
    """Stored outputs not proven to come from a clean run of this code."""

    lead = "stored outputs not proven fresh: "


class _CodedCheckItem(_StoredNotebookItem):
    """A lint whose findings carry rule codes (``verify.findings``)."""

    error: type[ProblemList]
    what: str

    def findings(self) -> list[Finding]:
        raise NotImplementedError

    def runtest(self) -> None:
        problems = [finding.coded for finding in selected(self.findings())]
        if problems:
            raise self.error(problems)

    def headline(self) -> str:
        return f"{self.nodeid.split('::')[0]} ({self.what})"


class DataflowItem(_CodedCheckItem):
    """The dataflow lint of one notebook: reads its cells, runs nothing."""

    error, what = DataflowError, "dataflow"

    def findings(self) -> list[Finding]:
        if not is_python(stated_language(self.notebook.metadata)):
            pytest.skip("the notebook's cells are not Python")
        return dataflow_findings(self.notebook.cells)


class FreshItem(_CodedCheckItem):
    """The freshness record of one notebook against its cells: runs nothing."""

    error, what = StaleOutputs, "freshness"

    def findings(self) -> list[Finding]:
        return freshness_findings(self.notebook, self.path.parent)


class ExportCheckItem(_StoredNotebookItem):
    """The notebook's exported modules exist and are what ``nbharness export`` would write."""

    def runtest(self) -> None:
        project = project_for(self.config, self.path)
        modules = modules_of(self.notebook, project.relative(self.path), project.export_root)
        problems = stale_modules(modules)
        if problems:
            raise ExportOutOfDate(problems)

    def headline(self) -> str:
        return f"{self.nodeid.split('::')[0]} (exported modules)"


class PairingCheckItem(_StoredNotebookItem):
    """The notebook has its script twin, in sync (when the project pairs notebooks)."""

    def runtest(self) -> None:
        pairing = pairing_for(self.config, self.path, self.notebook)
        if pairing is None:
            pytest.skip("the project does not pair notebooks with scripts")
        problem = pairing_problem(self.notebook, self.path, pairing)
        if problem:
            raise ProblemList([problem])

    def headline(self) -> str:
        return f"{self.nodeid.split('::')[0]} (paired script)"
