"""What the pytest side sends to the kernel for tests and assertions, and reads back.

The kernel gets ``in_kernel.py``'s source as a module of its own (``nbharness_in_kernel``)
in the run's prologue; the tests run later through ``LiveRun.run_code``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..notebook.io import nbharness_metadata
from .in_kernel import RESULTS_MIME

if TYPE_CHECKING:
    from nbformat import NotebookNode

#: The kernel module's name in ``sys.modules``.
MODULE = "nbharness_in_kernel"
#: Notebook metadata ``{"nbharness": {"rewrite_asserts": false}}`` turns rewriting off.
REWRITE_KEY = "rewrite_asserts"
_SOURCE = (Path(__file__).parent / "in_kernel.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class TestOutcome:
    """One test's result in the kernel: pytest's outcome word and its own text."""

    __test__ = False  # not a pytest test class, whatever its name

    outcome: str
    text: str = ""
    #: "setup" or "teardown" when the test failed there.
    when: str = ""


@dataclass(frozen=True)
class TestResults:
    """Every selected test's outcome, or why none could run."""

    __test__ = False

    outcomes: dict[str, TestOutcome]
    problem: str | None = None


def rewrites_asserts(nb: NotebookNode, project_setting: bool) -> bool:
    """The notebook's own metadata wins over the project's setting."""
    own = nbharness_metadata(nb).get(REWRITE_KEY)
    return own if isinstance(own, bool) else project_setting


def prologue(rewrite: bool) -> str:
    """Code for the run's prologue: the kernel module, installed before the first cell."""
    return (
        "def __nbharness_load(source):\n"
        "    import sys, types\n"
        f"    module = types.ModuleType({MODULE!r})\n"
        f"    exec(compile(source, {MODULE!r}, 'exec'), module.__dict__)\n"
        "    sys.modules[module.__name__] = module\n"
        "    return module\n"
        f"__nbharness_load({_SOURCE!r}).install(rewrite={rewrite!r})\n"
        "del __nbharness_load\n"
    )


def run_tests_code(path: Path, rootdir: Path, selected: list[str]) -> str:
    """Code that runs ``selected`` tests in the kernel and displays their results."""
    return f"__import__({MODULE!r}).run_tests({str(path)!r}, {str(rootdir)!r}, {selected!r})"


def read_results(cell: NotebookNode) -> TestResults:
    """The results the kernel displayed in ``cell``."""
    for out in cell.get("outputs", []):
        data: Any = out.get("data", {}).get(RESULTS_MIME)
        if data is not None:
            answer = json.loads(data) if isinstance(data, str) else data
            outcomes = {
                test: TestOutcome(seen["outcome"], seen["text"], seen["when"])
                for test, seen in answer.get("outcomes", {}).items()
            }
            return TestResults(outcomes, answer.get("problem"))
    return TestResults({}, "the kernel sent no test results")
