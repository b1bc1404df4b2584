"""Start-up: what `pytest --nb`, its xdist workers and the CLI import before a notebook runs.

Timing is measured in the benchmarks; here the behaviour: collecting notebooks imports
nothing that runs them (nbformat and its jsonschema cost about 0.15 s), and jsonschema's
IRI grammar (1.5 s to build, never used to validate a notebook) is not built where
nbformat is imported, while whoever asks for it later gets the real module.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

#: What building the IRI grammar imports (jupyter_server brings both, via jupyter_events).
GRAMMAR = ["rfc3987_syntax", "lark"]

#: Written by every process of a session (xdist workers too): the modules it holds after
#: collection, so the test can ask which ones a notebook's collection imported.
MODULES_CONFTEST = """
import json, sys

def pytest_collection_finish(session):
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    with open(f"modules-{worker}.json", "w") as file:
        json.dump(sorted(sys.modules), file)
"""


@pytest.fixture(autouse=True)
def grammar_installed() -> None:
    """Without the grammar installed these tests would pass for the wrong reason."""
    for name in GRAMMAR:
        assert importlib.util.find_spec(name), f"{name} is in the [test] extra's jupyter_server"


#: The same, written when the session ends: what running (or skipping) imported too.
AT_THE_END = MODULES_CONFTEST.replace("pytest_collection_finish", "pytest_sessionfinish")

#: What reading and running notebooks imports: none of it is needed to collect them.
RUNNING = ["nbformat", "jsonschema", "nbclient", "jupyter_client"]


def _modules(pytester: pytest.Pytester) -> dict[str, set[str]]:
    """The modules each process of the session held after collection, by process."""
    files = sorted(pytester.path.glob("modules-*.json"))
    return {f.stem.removeprefix("modules-"): set(json.loads(f.read_text())) for f in files}


def test_collecting_notebooks_imports_neither_nbformat_nor_the_iri_grammar(
    pytester: pytest.Pytester, make_notebook
) -> None:
    make_notebook("one.ipynb", ["x = 1"])
    make_notebook("two.ipynb", ["def test_two():\n    assert 2 == 2"])
    pytester.makeconftest(MODULES_CONFTEST)
    result = pytester.runpytest_subprocess("--nb", "-q", "--collect-only")
    result.stdout.fnmatch_lines(["*3 tests collected*"])
    modules = _modules(pytester)["main"]
    assert not modules & {*RUNNING, *GRAMMAR}


def test_xdist_workers_import_nbformat_to_run_but_never_the_iri_grammar(
    pytester: pytest.Pytester, make_notebook
) -> None:
    make_notebook("one.ipynb", ["x = 1"])
    make_notebook("two.ipynb", ["x = 2"])
    pytester.makeconftest(
        MODULES_CONFTEST.replace("pytest_collection_finish", "pytest_sessionfinish")
    )
    result = pytester.runpytest_subprocess("--nb", "-q", "-n", "2")
    result.assert_outcomes(passed=2)
    modules = _modules(pytester)
    assert sorted(modules) == ["gw0", "gw1", "main"]
    assert not modules["main"] & {*RUNNING, *GRAMMAR}  # the controller runs nothing
    for worker in ("gw0", "gw1"):
        assert "nbformat" in modules[worker]  # it ran a notebook
        assert not modules[worker] & set(GRAMMAR), worker


def test_a_cached_rerun_imports_nothing_that_runs_notebooks(
    pytester: pytest.Pytester, make_notebook
) -> None:
    make_notebook("one.ipynb", ["x = 1"])
    make_notebook("two.ipynb", ["x = 2"])
    pytester.runpytest_subprocess("--nb", "--nb-cache").assert_outcomes(passed=2)
    pytester.makeconftest(
        MODULES_CONFTEST.replace("pytest_collection_finish", "pytest_sessionfinish")
    )
    pytester.runpytest_subprocess("--nb", "--nb-cache").assert_outcomes(skipped=2)
    assert not _modules(pytester)["main"] & {*RUNNING, *GRAMMAR}


def test_the_cli_lints_without_importing_nbformat(make_notebook) -> None:
    """The pre-commit hooks that only read (order, dataflow, freshness) start fast."""
    notebook = make_notebook("clean.ipynb", ["x = 1"])
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['nbharness', 'check', '--order', '--dataflow', sys.argv[1]]\n"
        "try:\n"
        "    runpy.run_module('nbharness.cli', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "slow = {'nbformat', 'rfc3987_syntax', 'lark', 'importlib.metadata', 'importlib.abc'}\n"
        "print(sorted(slow & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(notebook)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "[]"


def test_a_later_iri_check_gets_the_real_grammar() -> None:
    """A user's own jsonschema IRI check in the same process still works, on demand."""
    probe = (
        "import sys, nbharness, nbformat, jsonschema\n"
        "assert 'rfc3987_syntax' not in sys.modules\n"
        "checker = jsonschema.FormatChecker()\n"
        "print(checker.conforms('http://example.com/ü', 'iri'))\n"
        "print(checker.conforms('no scheme here', 'iri'))\n"
        "import rfc3987_syntax\n"
        "print(hasattr(rfc3987_syntax, 'syntax_parser'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False", "True"]
