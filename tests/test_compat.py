"""Other tools' notebooks keep their meaning: nbmake's and pytest-notebook's metadata."""

from __future__ import annotations

import pytest

from .helpers import expect

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")


def test_nbmake_and_pytest_notebook_metadata_keep_their_meaning(pytester, make_notebook):
    make_notebook("lenient.ipynb", ["1/0", "print('went on')"], execution={"allow_errors": True})
    make_notebook("quick.ipynb", ["import time\ntime.sleep(30)"], execution={"timeout": 1})
    make_notebook("off.ipynb", ["1/0"], nbreg={"skip": True, "skip_reason": "flaky service"})
    result = pytester.runpytest("--nb", "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    expect(
        result.stdout,
        [
            "*cell 1 (In [1]) did not finish within the cell timeout of 1 s "
            "(notebook metadata execution.timeout)*",
            "SKIPPED [1] off.ipynb: flaky service",
        ],
    )


def test_nbmake_mocks_and_post_cell_code_run_after_their_cell(pytester, make_notebook):
    mocked = {
        "source": "x = 1",
        "metadata": {"nbmake": {"mock": {"x": 2}, "post_cell_execute": ["y = x + 1"]}},
    }
    make_notebook("mocked.ipynb", [mocked, "assert (x, y) == (2, 3)", "1/0"])
    result = pytester.runpytest("--nb", "--nb-compare")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*cell 3 (In [*]) raised ZeroDivisionError*"])


def test_broken_post_cell_code_is_named_as_such_not_as_a_cell(pytester, make_notebook):
    """nbmake's post_cell_execute is not one of the user's cells: say what it is."""
    hooked = {
        "source": "x = 1",
        "metadata": {"nbmake": {"post_cell_execute": ["raise Exception('boom!')"]}},
    }
    make_notebook("hooked.ipynb", [hooked, "y = 2"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            "*code run after cell 1 (nbmake's mock or post_cell_execute metadata) (In [2]) "
            "raised Exception: boom!*"
        ],
    )
    assert "cell 2" not in result.stdout.str()
