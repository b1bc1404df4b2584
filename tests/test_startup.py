"""Start-up: what `pytest --nb`, its xdist workers and the CLI import before a notebook runs.

Timing is measured in the benchmarks; here the behaviour: jsonschema's IRI grammar (1.5 s
to build, never used to validate a notebook) is not built, and whoever asks for it later
gets the real module.
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


@pytest.mark.parametrize(
    "args", [["--collect-only"], ["-n", "2"]], ids=["collect-only", "xdist-run"]
)
def test_collecting_a_notebook_does_not_build_the_iri_grammar(
    pytester: pytest.Pytester, make_notebook, args: list[str]
) -> None:
    make_notebook("one.ipynb", ["x = 1"])
    make_notebook("two.ipynb", ["x = 2"])
    pytester.makeconftest(MODULES_CONFTEST)
    result = pytester.runpytest_subprocess("--nb", "-q", *args)
    workers = "-n" in args  # xdist ignores -n with --collect-only: its workers run the notebooks
    result.assert_outcomes(passed=2 if workers else 0)
    files = sorted(pytester.path.glob("modules-*.json"))
    assert [f.name for f in files] == (
        ["modules-main.json"] if not workers else ["modules-gw0.json", "modules-gw1.json"]
    )
    for file in files:
        modules = set(json.loads(file.read_text()))
        assert {"nbformat", "jsonschema"} <= modules  # the notebooks were validated
        assert not modules & set(GRAMMAR), file.name


def test_the_cli_does_not_build_the_iri_grammar(make_notebook) -> None:
    notebook = make_notebook("clean.ipynb", ["x = 1"])
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['nbharness', 'check', '--order', sys.argv[1]]\n"
        "try:\n"
        "    runpy.run_module('nbharness.cli', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print(sorted({'nbformat', 'rfc3987_syntax', 'lark'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(notebook)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "['nbformat']"


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
