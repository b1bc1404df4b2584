"""The code that runs inside the notebook's kernel: sent as text, never imported there.

A remote kernel may not have nbharness installed, so this module imports nothing of
nbharness; ``kernel_code.py`` sends its source. pytest, where the kernel has it, is
imported only when a cell holds an ``assert`` or when tests run. Three jobs:

- rewrite every cell's ``assert`` with pytest's own rewriter (as ipytest does);
- notice a pytest run inside a cell (``%%ipytest``, ``ipytest.run()``, ``pytest.main``)
  that reported failures, and fail that cell naming the tests;
- run the notebook's ``test_*`` functions under pytest over the kernel's namespace, and
  answer with each test's outcome and pytest's own failure text.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import sys
from typing import Any

#: The MIME type the results come back under, as one display output.
RESULTS_MIME = "application/vnd.nbharness.tests+json"
#: pytest exit codes after which the results are whole: all passed, some failed, none ran.
_COMPLETE = (0, 1, 5)


def _shell() -> Any:
    from IPython import get_ipython

    return get_ipython()


class TestsFailedInCell(AssertionError):
    """A pytest run inside a cell reported failing tests (``%%ipytest`` says so but passes)."""

    __test__ = False


class _RewriteAsserts(ast.NodeTransformer):
    """pytest's assertion rewriting for each cell, as an IPython AST transformer."""

    def visit_Module(self, node: ast.Module) -> ast.Module:
        if not any(isinstance(child, ast.Assert) for child in ast.walk(node)):
            return node  # pytest stays unimported until an assert needs it
        try:
            from _pytest.assertion.rewrite import rewrite_asserts
        except ImportError:
            _shell().ast_transformers.remove(self)
            return node
        rewrite_asserts(node, b"")
        return node


class _FailedTests:
    """A pytest plugin that notes the tests that failed in one pytest run."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        test = _test_id(report.nodeid)
        if report.failed and test not in self.failed:
            self.failed.append(test)


class _PytestInCells:
    """Wraps ``pytest.main`` as pytest is imported, so that a cell whose pytest run
    reported failures fails (ipytest prints failures and carries on)."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.quiet = False  # our own test run is reported otherwise

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        """A ``sys.meta_path`` finder for ``pytest`` only: its loader, then the wrap."""
        if name != "pytest":
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            load(module)
            self.wrap(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def wrap(self, pytest: Any) -> None:
        original = pytest.main

        def main(args: Any = None, plugins: Any = None, **kwargs: Any) -> Any:
            plugin = _FailedTests()
            code = original(args, [*(plugins or []), plugin], **kwargs)
            if not self.quiet:
                self.failed += plugin.failed
            return code

        pytest.main = main

    def before_cell(self, *args: Any) -> None:
        self.failed = []

    def after_cell(self, result: Any) -> None:
        """Fail the cell as a cell fails, without a traceback of this callback."""
        if self.failed and result.error_in_exec is None:
            failed, self.failed = self.failed, []
            count = "1 test" if len(failed) == 1 else f"{len(failed)} tests"
            result.error_in_exec = TestsFailedInCell(
                f"pytest ran in this cell and {count} failed: {', '.join(failed)}"
            )
            _shell()._last_traceback = None


_PYTEST_IN_CELLS = _PytestInCells()


def install(rewrite: bool) -> None:
    """Set the kernel up before the first cell."""
    shell = _shell()
    if rewrite:
        shell.ast_transformers.append(_RewriteAsserts())
    if "pytest" in sys.modules:
        _PYTEST_IN_CELLS.wrap(sys.modules["pytest"])
    else:
        sys.meta_path.insert(0, _PYTEST_IN_CELLS)
    shell.events.register("pre_run_cell", _PYTEST_IN_CELLS.before_cell)
    shell.events.register("post_run_cell", _PYTEST_IN_CELLS.after_cell)


def run_tests(path: str, rootdir: str | None, selected: list[str]) -> None:
    """Run the ``selected`` tests (ids after ``::``; a bare name takes all its cases)
    of the kernel's namespace under pytest, and display the results as JSON."""
    from IPython.display import display

    display({RESULTS_MIME: _results(path, rootdir, selected)}, raw=True)  # type: ignore[no-untyped-call]


def _results(path: str, rootdir: str | None, selected: list[str]) -> dict[str, Any]:
    try:
        import pytest
    except ImportError:
        return {"problem": "pytest is not importable in the kernel"}
    wanted = set(selected)
    outcomes: dict[str, dict[str, Any]] = {}
    placeholder = None
    if not os.path.exists(path):  # a remote kernel: the notebook is where it runs, if at all
        path = os.path.join(os.getcwd(), os.path.basename(path))
    if not os.path.exists(path):  # nowhere: no conftest.py files, the tests still run
        import tempfile

        placeholder = tempfile.mkdtemp()
        path = os.path.join(placeholder, os.path.basename(path))
        open(path, "w").close()
    module = _shell().user_module

    class Collect:
        @pytest.hookimpl
        def pytest_collect_file(self, file_path: Any, parent: Any) -> Any:
            if str(file_path) == path:
                collected = pytest.Module.from_parent(parent, path=file_path)
                collected.obj = module
                return collected
            return None

        @pytest.hookimpl
        def pytest_collection_modifyitems(self, items: list[Any], config: Any) -> None:
            items[:] = [item for item in items if _selected(_test_id(item.nodeid), wanted)]

        @pytest.hookimpl
        def pytest_runtest_logreport(self, report: Any) -> None:
            _record(outcomes, report)

    args = [path, "-q", "--capture=sys", "-o", "addopts=", "-p", "no:cacheprovider"]
    args += ["-p", "no:nbharness", "-p", "no:xdist", "-p", "no:randomly"]
    # The project's ini keys for nbharness are unknown to this pytest without the plugin.
    args += ["-W", "ignore::pytest.PytestConfigWarning"]
    if rootdir and os.path.isdir(rootdir):  # not on a remote kernel's disk
        args += ["--rootdir", rootdir]
    printed = io.StringIO()
    saved = os.environ.pop("PYTEST_ADDOPTS", None)
    _PYTEST_IN_CELLS.quiet = True
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            code = int(pytest.main(args, plugins=[Collect()]))
    finally:
        _PYTEST_IN_CELLS.quiet = False
        if saved is not None:
            os.environ["PYTEST_ADDOPTS"] = saved
        if placeholder is not None:
            import shutil

            shutil.rmtree(placeholder, ignore_errors=True)
    answer: dict[str, Any] = {"outcomes": outcomes}
    if code not in _COMPLETE or (not outcomes and code != 5):
        answer["problem"] = _last_lines(printed.getvalue(), code)
    return answer


def _test_id(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


def _selected(test: str, wanted: set[str]) -> bool:
    """``test_p[1]`` is wanted by its own id, or by ``test_p`` (ids not known statically)."""
    return test in wanted or test.split("[")[0] in wanted


def _record(outcomes: dict[str, dict[str, Any]], report: Any) -> None:
    """One test's outcome from its setup, call and teardown reports: the first that did
    not pass decides, with pytest's own text for it."""
    test = _test_id(report.nodeid)
    seen = outcomes.setdefault(test, {"outcome": "passed", "text": "", "when": ""})
    if seen["outcome"] != "passed":
        return
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
        seen.update(outcome=outcome, text=str(report.wasxfail), when=report.when)
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        seen.update(outcome="skipped", text=str(reason).removeprefix("Skipped: "))
    elif report.failed:
        outcome = "failed" if report.when == "call" else "error"
        seen.update(outcome=outcome, text=_cells_named(_text_of(report)), when=report.when)


def _text_of(report: Any) -> str:
    """pytest's failure text as its terminal shows it (``longreprtext`` strips the
    indentation of the first source line)."""
    from _pytest._io import TerminalWriter

    written = io.StringIO()
    writer = TerminalWriter(written)
    writer.hasmarkup = False
    report.toterminal(writer)
    return written.getvalue().strip("\n")


def _cells_named(text: str) -> str:
    """ipykernel's file name of a cell's code (``/tmp/ipykernel_7/123.py``) as ``In [n]``."""
    for filename, number in getattr(_shell().compile, "_filename_map", {}).items():
        text = text.replace(f"{filename}:", f"In [{number}]:")
    return text


def _last_lines(printed: str, code: int) -> str:
    lines = [line for line in printed.splitlines() if line.strip()]
    tail = " / ".join(lines[-3:]) if lines else "no output"
    return f"pytest in the kernel stopped with exit code {code}: {tail}"
