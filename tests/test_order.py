"""The execution-order lint, as a function, a pytest item and `nbharness check`."""

from __future__ import annotations

import json

import pytest

from nbharness.cli import main
from nbharness.verify.order import order_problems

from .helpers import expect


def code(count, source="x = 1", outputs=None, tags=None):
    cell = {"cell_type": "code", "source": source, "execution_count": count, "metadata": {}}
    cell["outputs"] = outputs or []
    if tags:
        cell["metadata"]["tags"] = tags
    return cell


def result(count):
    return {"output_type": "execute_result", "execution_count": count, "data": {}, "metadata": {}}


MARKDOWN = {"cell_type": "markdown", "source": "# Title", "metadata": {}}


@pytest.mark.parametrize(
    "cells",
    [
        [],
        [MARKDOWN, code(None), code(None)],
        [code(1), MARKDOWN, code(2, outputs=[result(2)]), code(3)],
        [code(1), code(None, source="  \n"), code(2)],
        [code(1), code(2), code(None), code(None)],
        [code(1), code(None, tags=["skip-execution"]), code(2)],
    ],
    ids=["empty", "never-run", "clean", "empty-cell", "stopped-at-an-error", "skip-tag"],
)
def test_a_clean_run_has_no_problems(cells):
    assert order_problems(cells) == []


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        ([code(1), code(3), code(2)], "cell 3 (In [2]) ran before cell 2 (In [3])"),
        ([code(1), code(1)], "cells 1 and 2 both show In [1]"),
        (
            [code(1), code(4)],
            "In [2] to In [3] not in the notebook, between cell 1 (In [1]) and cell 2 (In [4]): "
            "a cell run twice, or run and then deleted",
        ),
        (
            [code(1), code(3), MARKDOWN, code(4)],
            "In [2] not in the notebook, between cell 1 (In [1]) and cell 2 (In [3]): "
            "a cell run twice, or run and then deleted",
        ),
        (
            [code(2)],
            "cell 1 is In [2], not In [1]: 1 other execution came first (cells run and then "
            "deleted, or a kernel that was not fresh)",
        ),
        (
            [code(1), code(None, outputs=[result(None)])],
            "cell 2 has outputs but no execution count",
        ),
        (
            [code(1, outputs=[result(7)])],
            "cell 1 (In [1]) shows the result of an earlier run (Out [7])",
        ),
        (
            [code(1), code(None), code(None), code(2)],
            "cells 2 and 3 did not run, but cell 4 below did",
        ),
    ],
    ids=[
        "out-of-order",
        "repeat",
        "gap",
        "one-missing",
        "late-start",
        "outputs-no-count",
        "stale-result",
        "hole",
    ],
)
def test_each_kind_of_hidden_state_is_named(cells, problem):
    assert problem in order_problems(cells)


def test_a_swap_is_one_problem_and_problems_read_top_to_bottom():
    assert order_problems([code(1), code(3), code(2), code(4)]) == [
        "cell 3 (In [2]) ran before cell 2 (In [3])"
    ]
    problems = order_problems([code(None, outputs=[result(None)]), code(2), code(2)])
    assert [p.split()[1] for p in problems] == ["1", "2", "2"]


def test_cells_re_run_late_are_one_finding_each_not_one_per_cell_below():
    counts = [1, 13, 14, *range(4, 13)]  # cells 2 and 3 run again after the last cell
    assert order_problems([code(count) for count in counts]) == [
        "In [2] to In [3] not in the notebook, between cell 1 (In [1]) and cell 4 (In [4]): "
        "a cell run twice, or run and then deleted",
        "cell 2 (In [13]) ran after cell 4 (In [4]) below it",
        "cell 3 (In [14]) ran after cell 4 (In [4]) below it",
    ]


def test_a_last_cell_run_first_is_one_finding():
    assert order_problems([code(count) for count in [*range(2, 11), 1]]) == [
        "cell 10 (In [1]) ran before cell 9 (In [10])"
    ]


def write(path, cells, nbformat=4):
    path.write_text(
        json.dumps({"nbformat": nbformat, "nbformat_minor": 4, "metadata": {}, "cells": cells})
    )


def test_the_pytest_item_fails_an_out_of_order_notebook_without_running_it(pytester):
    write(pytester.path / "messy.ipynb", [code(2, "1/0"), code(1)])
    write(pytester.path / "clean.ipynb", [code(1), code(2)])
    result = pytester.runpytest("--nb", "--nb-check-order", "-k", "execution")
    result.assert_outcomes(passed=1, failed=1)
    expect(
        result.stdout,
        [
            "*_ messy.ipynb (execution order) _*",
            "not run top to bottom in one fresh kernel: "
            "cell 2 (In [1]) NBH201 ran before cell 1 (In [2])",
        ],
    )


def test_the_ini_option_turns_the_lint_on(pytester):
    write(pytester.path / "clean.ipynb", [code(1), code(2)])
    pytester.makeini("[pytest]\nnb_check_order = true\n")
    result = pytester.runpytest("--nb", "-v")
    expect(result.stdout, ["clean.ipynb::execution-order PASSED*", "clean.ipynb::clean PASSED*"])


def test_the_command_lists_problems_and_exits_non_zero(tmp_path, capsys):
    write(tmp_path / "messy.ipynb", [code(1), code(1)])
    write(tmp_path / "clean.ipynb", [code(1), code(2)])
    (tmp_path / ".ipynb_checkpoints").mkdir()
    write(tmp_path / ".ipynb_checkpoints" / "messy-checkpoint.ipynb", [code(5)])
    (tmp_path / "broken.ipynb").write_text("{")
    assert main(["check", "--order", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{tmp_path / 'messy.ipynb'}: cells 1 and 2 NBH203 both show In [1]"
    ]
    assert err.startswith(f"{tmp_path / 'broken.ipynb'}: not a valid notebook:")
    assert main(["check", "--order", str(tmp_path / "clean.ipynb")]) == 0


def test_the_command_reads_old_nbformat(tmp_path, capsys):
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {},
        "worksheets": [
            {"cells": [{"cell_type": "code", "input": "x", "prompt_number": 3, "outputs": []}]}
        ],
    }
    (tmp_path / "old.ipynb").write_text(json.dumps(v3))
    assert main(["check", str(tmp_path)]) == 1
    assert "cell 1 NBH205 is In [3], not In [1]" in capsys.readouterr().out
