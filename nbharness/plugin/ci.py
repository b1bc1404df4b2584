"""What CI shows people, at the pytest edge: records of every notebook test, reported once.

Each process builds a ``RunRecord`` as a test's report is made and hangs it on the report
(``REPORT_ATTRIBUTE``). pytest-xdist sends a report's attributes to the controller, which
sees every worker's reports and writes the annotations, the step summary and the HTML
report once. An attribute rather than a user property: JUnit XML writes user properties
out, and an executed notebook does not belong there.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..config.settings import settings_of
from ..errors import CellProblem, NbHarnessError
from ..notebook.cellmarks import is_injected, user_index
from ..publish import RunRecord, changed_images
from ..text import first_line
from ..verify.compare import OutputMismatch
from .cache import SKIP_REASON
from .items import NotebookItem, NotebookItemBase, output_path

if TYPE_CHECKING:
    from nbformat import NotebookNode

PLUGIN = "nbharness-ci"
REPORT_ATTRIBUTE = "nbharness_record"


def wanted(config: pytest.Config) -> bool:
    """Any CI report asked for: by GitHub's environment, or ``--nb-html``."""
    return (
        os.environ.get("GITHUB_ACTIONS") == "true"
        or bool(os.environ.get("GITHUB_STEP_SUMMARY"))
        or html_path(config) is not None
    )


def html_path(config: pytest.Config) -> Path | None:
    """``--nb-html PATH`` (ini ``nb_html``), relative to the rootdir as an ini value."""
    value = config.getoption("nb_html")
    if value is not None:
        return Path(value).absolute()
    value = config.getini("nb_html")
    return config.rootpath / value if value else None


class CiReports:
    """Builds the records (every process) and writes the reports (the controller only)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.html = html_path(config)
        if self.html is not None and importlib.util.find_spec("nbconvert") is None:
            raise pytest.UsageError("--nb-html needs nbconvert: pip install 'nbharness[html]'")
        self.html_all = bool(config.getoption("nb_html_all") or config.getini("nb_html_all"))
        self.records: dict[str, RunRecord] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if isinstance(item, NotebookItemBase) and (call.when == "call" or not report.passed):
            record = self._record(item, call, report)
            setattr(report, REPORT_ATTRIBUTE, record.to_dict())
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if data is None or hasattr(self.config, "workerinput"):
            return  # an xdist worker's reports are the controller's to publish
        self.records[report.nodeid] = RunRecord.from_dict(data)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if hasattr(self.config, "workerinput") or not self.records:
            return
        from ..publish.github import annotation, step_summary

        records = list(self.records.values())
        if os.environ.get("GITHUB_ACTIONS") == "true":
            prefix = _prefix_in_workspace(self.config.rootpath)
            for line in filter(None, (annotation(r, prefix) for r in records)):
                terminalreporter.write_line(line)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            try:
                with open(summary, "a", encoding="utf-8") as out:
                    out.write(step_summary(records))
            except OSError as exc:
                reason = exc.strerror or str(exc)
                terminalreporter.write_line(
                    f"nbharness: step summary {summary}: not written: {reason}", red=True
                )
        if self.html is not None:
            from ..notebook.io import NotWritten
            from ..publish.html import write_report

            try:
                write_report(self.html, records, self.config.rootpath)
            except NotWritten as exc:
                terminalreporter.write_line(f"nbharness: HTML report {exc}", red=True)
            else:
                terminalreporter.write_line(f"nbharness: HTML report written to {self.html}")

    def _record(
        self, item: NotebookItemBase, call: pytest.CallInfo[None], report: pytest.TestReport
    ) -> RunRecord:
        root = self.config.rootpath
        record = RunRecord(
            nodeid=item.nodeid,
            title=item.headline(),
            notebook=_relative(item.path, root),
            outcome=_outcome(report),
            duration=report.duration,
        )
        error = call.excinfo.value if call.excinfo is not None else None
        if report.skipped and isinstance(report.longrepr, tuple):
            record.reason = str(report.longrepr[2]).removeprefix("Skipped: ")
            record.cached = record.reason == SKIP_REASON
        elif isinstance(error, NbHarnessError):
            record.reason = first_line(error.summary)
        elif report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            record.reason = first_line(str(getattr(crash, "message", "")), report.outcome)
        if report.failed:
            record.report = report.longreprtext
        if isinstance(error, CellProblem) and error.script is not None:
            record.script, record.line = _relative(error.script, root), error.script_line
        if isinstance(error, OutputMismatch):
            record.diffs = error.diffs
        if isinstance(item, NotebookItem):
            self._keep_executed(item, record, error)
        return record

    def _keep_executed(
        self, item: NotebookItem, record: RunRecord, error: BaseException | None
    ) -> None:
        """The executed notebook, and its copy on disk, for the HTML report."""
        output_dir = settings_of(self.config).output_dir
        if output_dir is not None:
            copy = output_path(item, output_dir)
            if copy.exists():
                record.executed_path = str(copy)
        executed = item.executed
        if executed is None or self.html is None or not (record.failing or self.html_all):
            return
        record.executed = json.dumps(executed)
        if isinstance(error, OutputMismatch):
            compare = settings_of(self.config).compare
            record.images = changed_images(item.notebook, executed, compare)
        if isinstance(error, CellProblem) and not error.injected:
            record.failed_cell = _executed_index(executed, error.index)


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed and report.when != "call":
        return "error"
    return report.outcome


def _executed_index(executed: NotebookNode, index: int) -> int | None:
    """The index in the executed notebook of the user's cell ``index`` (a report counts
    the user's cells; the run also has injected ones)."""
    cells = executed.cells
    for n, cell in enumerate(cells):
        if not is_injected(cell) and user_index(cells, n) == index:
            return n
    return None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _prefix_in_workspace(root: Path) -> str:
    """The rootdir's path inside the checked-out repository, for annotations' ``file``."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return ""
    try:
        inside = root.resolve().relative_to(Path(workspace).resolve()).as_posix()
    except ValueError:
        return ""
    return "" if inside == "." else inside + "/"
