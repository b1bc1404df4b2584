"""Items that check a notebook as stored, running no kernel: order, exports, pairing."""

from __future__ import annotations

import pytest
from nbformat import NotebookNode

from ..errors import NbHarnessError, ProblemList
from ..vcs.export import ExportOutOfDate, modules_of, stale_modules
from ..vcs.sync import pairing_problem
from ..verify.order import ExecutionOrderError, order_problems
from .items import NotebookItemBase, pairing_for, project_for

#: Name of the execution-order lint's item: ``analysis.ipynb::execution-order``.
ORDER_ITEM = "execution-order"
#: Name of the export check's item: ``analysis.ipynb::export``.
EXPORT_ITEM = "export"
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

    def __init__(self, *, notebook: NotebookNode, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.notebook = notebook


class ExecutionOrderItem(_StoredNotebookItem):
    """The execution-order lint of one notebook: reads stored counts, runs nothing."""

    def runtest(self) -> None:
        problems = order_problems(self.notebook.cells)
        if problems:
            raise ExecutionOrderError(problems)

    def headline(self) -> str:
        return f"{self.nodeid.split('::')[0]} (execution order)"


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
