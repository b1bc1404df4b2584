"""What a failing notebook's report says: the cell, its source, a clean traceback; and tags."""

from __future__ import annotations

import pytest

from .helpers import expect

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")


def test_a_failing_cell_is_reported_with_its_number_source_and_clean_traceback(
    pytester, make_notebook
):
    make_notebook(
        "broken.ipynb",
        [
            {"markdown": "Setup"},
            "def ratio(a, b):\n    return a / b",
            "x = 1\ny = ratio(x, 0)\nprint('unreached')",
            "print('never run')",
        ],
    )
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            "*cell 3 (In [2]) raised ZeroDivisionError: division by zero",
            "Source of cell 3 (In [2]):",
            "    1 | x = 1",
            "--> 2 | y = ratio(x, 0)",
            "    3 | print('unreached')",
            "Traceback (kernel frames trimmed):",
            "*cell 3 (In [2]), line 2*",
            "*cell 2 (In [1]), line 2, in ratio(a, b)*",
            "ZeroDivisionError: division by zero",
            "*short test summary info*",
            "FAILED broken.ipynb::broken - cell 3 (In [2]) raised ZeroDivisionError*",
        ],
    )
    assert "\x1b[" not in result.stdout.str()
    assert "nbharness/" not in result.stdout.str()


def test_kernel_frames_are_trimmed_unless_fulltrace(pytester, make_notebook):
    make_notebook("asks.ipynb", ["name = input('name?')"])
    trimmed = pytester.runpytest("--nb")
    expect(
        trimmed.stdout,
        ["*cell 1 (In [1]) asked for input (input() or getpass), which a test run cannot answer*"],
    )
    assert "kernelbase.py" not in trimmed.stdout.str()
    full = pytester.runpytest("--nb", "--fulltrace")
    expect(full.stdout, ["Traceback:", "*ipykernel*kernelbase.py*"])


@pytest.mark.parametrize(
    ("tb", "present", "absent"),
    [
        ("short", ["--> 1 | 1/0"], ["Traceback"]),
        ("line", ["*broken.ipynb: cell 1 (In [1]) raised ZeroDivisionError: division by zero"], []),
        ("no", [], ["raised ZeroDivisionError: division by zero\n"]),
    ],
)
def test_tb_styles_shape_the_report(pytester, make_notebook, tb, present, absent):
    make_notebook("broken.ipynb", ["1/0"])
    result = pytester.runpytest("--nb", f"--tb={tb}", "-rN")
    result.assert_outcomes(failed=1)
    expect(result.stdout, present)
    for text in absent:
        assert text not in result.stdout.str()


def test_the_failure_headline_is_the_notebooks_path(pytester, make_notebook):
    make_notebook("one/notebook2.ipynb", ["1/0"])
    make_notebook("two/notebook2.ipynb", ["1/0"])
    make_notebook("v4.5.ipynb", ["1/0"])
    result = pytester.runpytest("--nb", "-v")
    expect(
        result.stdout,
        [
            "one/notebook2.ipynb::notebook2 FAILED*",
            "two/notebook2.ipynb::notebook2 FAILED*",
            "v4.5.ipynb::v4.5 FAILED*",
            "*_ one/notebook2.ipynb _*",
            "*_ two/notebook2.ipynb _*",
            "*_ v4.5.ipynb _*",
        ],
    )


def test_an_error_without_error_output_still_names_the_exception(pytester, make_notebook):
    make_notebook("magic.ipynb", ["x = 1", "%undefined_line_magic"])
    result = pytester.runpytest("--nb")
    expect(result.stdout, ["*cell 2 (In [2]) raised UsageError: Line magic function *not found*"])


def test_a_syntax_error_points_at_its_line(pytester, make_notebook):
    make_notebook("syntax.ipynb", ["x = 1\ny = (\n"])
    result = pytester.runpytest("--nb")
    expect(result.stdout, ["*cell 1 (In [1]) raised SyntaxError*", "--> 2 | y = ("])


def test_failing_cell_output_is_shown_as_captured_sections(pytester, make_notebook):
    make_notebook(
        "noisy.ipynb", ["import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n1/0"]
    )
    result = pytester.runpytest("--nb")
    expect(
        result.stdout,
        ["*Captured stdout call*", "to stdout", "*Captured stderr call*", "to stderr"],
    )


@pytest.mark.parametrize("exit_call", ["sys.exit(0)", "sys.exit()", "raise SystemExit"])
def test_a_clean_system_exit_ends_the_notebook_as_a_pass(pytester, make_notebook, exit_call):
    make_notebook("early.ipynb", [f"import sys\n{exit_call}", "raise RuntimeError('must not run')"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1)


def test_a_system_exit_with_an_error_code_fails(pytester, make_notebook):
    make_notebook("exit3.ipynb", ["import sys\nsys.exit(3)"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*cell 1 (In [1]) called sys.exit(3)*"])


def test_tags_skip_cells_and_allow_expected_errors(pytester, make_notebook):
    make_notebook(
        "tags.ipynb",
        [
            {"source": "raise RuntimeError('never run')", "tags": ["skip-execution"]},
            {"source": "1/0", "tags": ["raises-exception"]},
            "print('the notebook goes on')",
        ],
    )
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1)


def test_a_cell_tagged_to_raise_that_does_not_warns_or_fails_when_strict(pytester, make_notebook):
    make_notebook("calm.ipynb", ["x = 1", {"source": "y = 2", "tags": ["raises-exception"]}])
    lenient = pytester.runpytest("--nb")
    lenient.assert_outcomes(passed=1, warnings=1)
    expect(
        lenient.stdout,
        [
            "*NotebookWarning: calm.ipynb: cell 2 (In [2]) is tagged 'raises-exception' "
            "but raised nothing"
        ],
    )
    strict = pytester.runpytest("--nb", "--nb-strict-raises")
    strict.assert_outcomes(failed=1)
    expect(strict.stdout, ["*cell 2 (In [2]) is tagged 'raises-exception' but raised nothing"])


def test_pytest_skip_or_xfail_in_a_cell_ends_the_test_that_way(pytester, make_notebook):
    make_notebook("skips.ipynb", ["import pytest", "pytest.skip('no GPU here')", "1/0"])
    make_notebook("xfails.ipynb", ["import pytest\npytest.xfail('known bug #12')"])
    result = pytester.runpytest("--nb", "-rsx")
    result.assert_outcomes(skipped=1, xfailed=1)
    expect(
        result.stdout,
        ["SKIPPED [1] skips.ipynb:1: no GPU here", "XFAIL xfails.ipynb::xfails - known bug #12"],
    )


def test_an_error_raised_after_a_cell_finished_still_fails(pytester, make_notebook):
    hook = (
        "def fail_after(*args):\n"
        "    raise ValueError('broken post-execute hook')\n"
        "get_ipython().events.register('post_run_cell', fail_after)"
    )
    make_notebook("late.ipynb", [hook, "x = 1"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*raised ValueError: broken post-execute hook*"])


def test_a_marker_word_in_prose_is_not_a_marker(pytester, make_notebook):
    make_notebook(
        "prose.ipynb", ["# we removed NBVAL_SKIP here: this cell must run\nraise ValueError('ran')"]
    )
    pytester.runpytest("--nb").assert_outcomes(failed=1)
