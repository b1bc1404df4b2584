"""Coverage of code that only notebooks run, in pytest-cov's report."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .helpers import expect

# Each test is a whole pytest session under coverage in a subprocess: 20 to 70 s apiece.
pytestmark = pytest.mark.slow

PACKAGE = """
def used_by_notebook(x):
    if x > 0:
        return "positive"
    return "non-positive"


def used_by_test():
    return 1
"""


@pytest.mark.parametrize("args", [[], ["-n", "2"], ["--nb-launcher", "process"]])
def test_lines_run_only_by_notebooks_are_covered(pytester, make_notebook, monkeypatch, args):
    (pytester.path / "mypkg").mkdir()
    (pytester.path / "mypkg" / "__init__.py").write_text(PACKAGE)
    test = "from mypkg import used_by_test\n\ndef test_it():\n    assert used_by_test() == 1\n"
    pytester.makepyfile(test_plain=test)
    make_notebook("uses.ipynb", ["from mypkg import used_by_notebook\nused_by_notebook(3)"])
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = pytester.runpytest_subprocess(
        "--nb", "--cov=mypkg", "--cov-report=term-missing", *args
    )
    result.assert_outcomes(passed=2)
    # Line 4 (return "positive") runs only in the notebook's kernel; line 5 never runs.
    expect(result.stdout, ["mypkg/__init__.py * 6 * 1 * 83% * 5"])


SCRIPT_CELLS = [
    {"markdown": "# Sizes"},
    "x = 3",
    "if x > 5:\n    size = 'big'\nelse:\n    size = 'small'",
    "print(size)",
]


@pytest.mark.parametrize(
    "args", [[], ["-n", "2", "--cov-branch"], ["--nb-launcher", "process", "--cov=."]]
)
def test_cells_are_reported_on_the_paired_script(pytester, make_notebook, args):
    """The notebook's own lines show up on its twin, with the branch not taken missing."""
    make_notebook("sizes.ipynb", SCRIPT_CELLS, jupytext={"formats": "ipynb,py:percent"})
    synced = subprocess.run(
        [sys.executable, "-m", "nbharness.cli", "sync", "sizes.ipynb"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert synced.returncode == 0, synced.stderr
    script = (pytester.path / "sizes.py").read_text().splitlines()
    missing = script.index("    size = 'big'") + 1
    sources = [] if "--cov=." in args else [f"--cov={pytester.path}"]
    result = pytester.runpytest_subprocess(
        "--nb", *sources, "--cov-report=term-missing", "-p", "no:cacheprovider", *args
    )
    result.assert_outcomes(passed=1)
    expect(result.stdout, [f"sizes.py * 5 * 1 *{missing}*"])
    assert "ipykernel_" not in result.stdout.str()
