"""The ``notebook`` fixture: a notebook run once, its kernel questioned by a test."""

from __future__ import annotations

import pytest

from nbharness.errors import CodeError

from .helpers import MakeNotebook, assert_all_dead, expect, record_pids_cell

ANALYSIS = [
    {"source": "n = 3\nlabel = 'demo'", "tags": ["parameters"]},
    "import math\nvalues = [i * i for i in range(n)]\nprint(f'{label}: {values}')",
    {"source": "def scale(xs, by=2):\n    return [x * by for x in xs]", "tags": ["helpers"]},
    "total = sum(values)\ntotal",
]


@pytest.fixture
def analysis(make_notebook: MakeNotebook):
    return make_notebook("analysis.ipynb", ANALYSIS)


def test_values_functions_and_outputs_of_a_live_notebook(notebook, analysis):
    nb = notebook(analysis, parameters={"n": 4, "label": "four"})
    assert nb.value("values") == [0, 1, 4, 9]
    assert nb.value("math") == repr(__import__("math"))
    assert nb.value("{'nan': float('nan')}")["nan"] != nb.value("float('nan')")
    assert nb.call("scale", [1, 2], by=10) == [10, 20]
    assert nb.text(1) == "four: [0, 1, 4, 9]\n"
    assert nb.text(3) == "14\n"
    assert nb.cell("helpers").source.startswith("def scale")
    assert nb.notebook.cells[1].metadata.tags == ["injected-parameters"]


def test_code_that_raises_in_the_kernel_is_reported_with_its_traceback(notebook, analysis):
    nb = notebook(analysis)
    with pytest.raises(
        CodeError, match=r"'undefined_name' raised NameError: name 'undefined_name'"
    ):
        nb.value("undefined_name")
    with pytest.raises(TypeError, match="must be JSON data"):
        nb.call("scale", {1, 2})


def test_a_notebook_that_fails_fails_the_test_with_the_report(pytester, make_notebook):
    make_notebook("broken.ipynb", ["x = 1", "1/0"])
    pytester.makepyfile(
        """
        def test_it(notebook):
            notebook("broken.ipynb")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            "*broken.ipynb: cell 2 (In [2]) raised ZeroDivisionError: division by zero",
            "--> 1 | 1/0",
        ],
    )
    assert "live.py" not in result.stdout.str()


def test_a_failure_counts_cells_as_the_users_notebook_does(pytester, make_notebook):
    make_notebook("broken.ipynb", ["x = 1", "1/x"])
    pytester.makepyfile(
        """
        def test_it(notebook):
            notebook("broken.ipynb", before={0: "print('set up')"}, after={0: "x = 0"})
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        ["*broken.ipynb: cell 2 (In [4]) raised ZeroDivisionError: division by zero"],
    )


def test_code_that_raises_is_reported_as_the_test_wrote_it(notebook, analysis):
    nb = notebook(analysis)
    with pytest.raises(CodeError) as raised:
        nb.call("scale", "a", by=None)
    report = str(raised.value)
    assert report.startswith("'scale(...)' raised TypeError")
    assert "Source of 'scale(...)':" in report
    assert "Traceback (kernel frames trimmed):" in report
    assert "in scale(xs, by)" in report


def test_the_kernel_is_killed_when_the_test_fails(pytester, make_notebook):
    make_notebook("lives.ipynb", [record_pids_cell()])
    pytester.makepyfile(
        """
        def test_it(notebook):
            nb = notebook("lives.ipynb")
            assert nb.value("1 + 1") == 3
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert_all_dead([int(pid) for pid in (pytester.path / "pids.txt").read_text().split()])


def test_a_missing_notebook_or_bad_parameters_fail_in_one_line(pytester, make_notebook):
    make_notebook("analysis.ipynb", ANALYSIS)
    pytester.makepyfile(
        """
        import datetime

        def test_missing(notebook):
            notebook("nowhere.ipynb")

        def test_bad_value(notebook):
            notebook("analysis.ipynb", parameters={"n": datetime.date(2026, 1, 1)})
        """
    )
    result = pytester.runpytest("-rf")
    result.assert_outcomes(failed=2)
    expect(
        result.stdout,
        [
            "*nowhere.ipynb: not a valid notebook: cannot read it*",
            "*analysis.ipynb: parameters=: set 1, parameter 'n': a date cannot be injected*",
        ],
    )


def test_code_injected_before_or_after_cells_runs_there_and_is_not_a_cell(notebook, analysis):
    nb = notebook(
        analysis,
        before={"helpers": "BEFORE_HELPERS = 'yes'"},
        after={1: "values = [v + 100 for v in values]"},
    )
    assert nb.value("values") == [100, 101, 104]
    assert nb.value("BEFORE_HELPERS") == "yes"
    assert len(nb.cells) == len(ANALYSIS)
    assert nb.text(3) == "305\n"


def test_a_patch_holds_inside_the_with_block_only(notebook, analysis):
    nb = notebook(analysis)
    with nb.patch("math.sqrt", return_value=42):
        assert nb.value("math.sqrt(4)") == 42
    assert nb.value("math.sqrt(4)") == 2.0


def test_pickle_brings_back_the_object_itself(notebook, analysis):
    nb = notebook(analysis)
    assert nb.value("{1, 2, 3}") == "{1, 2, 3}"  # JSON cannot hold a set: its repr
    assert nb.value("{1, 2, 3}", pickle=True) == {1, 2, 3}
    assert nb.value("__import__('fractions').Fraction(1, 3)", pickle=True) == __import__(
        "fractions"
    ).Fraction(1, 3)


def test_injecting_at_an_unknown_cell_fails_in_one_line(pytester, make_notebook):
    make_notebook("analysis.ipynb", ANALYSIS)
    pytester.makepyfile(
        """
        def test_it(notebook):
            notebook("analysis.ipynb", before={"no-such-tag": "x = 1"})
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*no cell has the index or tag 'no-such-tag'*"])
