"""Coverage of code that only notebooks run, in pytest-cov's report."""

from __future__ import annotations

import pytest

from .test_plugin import expect

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
