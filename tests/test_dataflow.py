"""The cell dataflow lint, as a function and as `nbharness check --dataflow`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nbformat
import pytest

from nbharness.cli import main
from nbharness.verify.cellnames import cell_names
from nbharness.verify.dataflow import dataflow_findings, dependents

from .helpers import build_notebook, expect

THIRD_PARTY = Path(__file__).parent / "data" / "thirdparty"


def cells(*sources: str) -> list[dict[str, object]]:
    return [dict(cell) for cell in build_notebook(list(sources)).cells]


def lines(*sources: str) -> list[str]:
    return [finding.coded for finding in dataflow_findings(cells(*sources))]


CLEAN = {
    "imports": ["import os, numpy.linalg as la\nfrom math import pi", "print(os.sep, la, pi)"],
    "functions": [
        "def area(r, scale=2):\n    return pi * r * r * scale * factor",
        "from math import pi\nfactor = 1",
        "area(3)",
    ],
    "comprehensions": [
        "squares = [i * i for i in range(3)]\n{k: v for k, v in zip('ab', squares)}"
    ],
    "nested-comprehension": ["[[x, y] for x in range(2) for y in range(x)]"],
    "loops": ["for i in range(3):\n    if i:\n        print(last)\n    last = i", "print(i, last)"],
    "while": ["n = 0\nwhile n < 3:\n    n += 1"],
    "magics": [
        "%matplotlib inline\n%load_ext autoreload\n!pip --version\nfiles = !ls\nlen?",
        "%time total = sum(range(3))\n%timeit total + 1",
        "%%bash\necho $undefined_in_bash",
        "%%time\nlater = total",
        "print(files, later)",
    ],
    "display": ["display(In, Out, _, __file__, get_ipython())"],
    "classes": [
        "class Point:\n    dims = 2\n    size = dims * 4\n    def norm(self):\n        return dims",
        "dims = 3\nPoint().norm()",
    ],
    "global": ["def setup():\n    global config\n    config = {}", "setup()\nconfig"],
    "del-and-redefine": ["x = 1", "del x", "x = 2\nprint(x)"],
    "try-name-error": ["try:\n    counter\nexcept NameError:\n    counter = 0", "counter += 1"],
    "with-except-walrus": [
        "with open(__file__) as handle:\n    pass",
        "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n    err = exc",
        "if (n := 3) > 2:\n    print(n, handle, err)",
    ],
    "lambda": ["f = lambda a, b=1: a + b + offset", "offset = 1\nf(2)"],
    "match": ["match [1, 2]:\n    case [first, *rest]:\n        print(first, rest)"],
    "star-import": ["from os.path import *", "join('a', 'b')"],
    "run-magic": ["%run helpers.py", "helper()"],
    "unknown-cell-magic": ["%%sql result <<\nSELECT 1", "print(result)"],
    "unparsable": ["SELECT * FROM t WHERE a = 1;", "print(anything)"],
    "ipython-history": ["1 + 1", "print(_1, _i1, _ih)"],
}


@pytest.mark.parametrize("sources", CLEAN.values(), ids=CLEAN.keys())
def test_a_notebook_a_clean_run_gets_through_has_no_findings(sources):
    assert lines(*sources) == []


def test_a_name_used_before_the_cell_that_defines_it():
    found = lines("import math", "print(x + math.pi)", "x = 1")
    assert found == ["cell 2 NBH101 'x' is used before cell 3 defines it"]


def test_a_name_used_before_its_own_cell_assigns_it():
    assert lines("print(y)\ny = 1") == ["cell 1 NBH101 'y' is used before this cell defines it"]


def test_a_name_no_cell_defines():
    assert lines("total = price * 2") == ["cell 1 NBH102 no cell defines 'price'"]


def test_a_function_reading_a_name_no_cell_defines():
    found = lines("def report():\n    return summary", "x = 1")
    assert found == ["cell 1 NBH102 no cell defines 'summary', which a function here reads"]


def test_a_name_used_after_a_cell_deletes_it():
    assert lines("df = 1", "del df", "df") == ["cell 3 NBH104 'df' is used after cell 2 deletes it"]


def test_skipped_and_raising_cells_are_not_judged_for_what_they_read():
    skipped = {"source": "print(nothing)", "tags": ["skip-execution"]}
    raising = {"source": "undefined_on_purpose", "tags": ["raises-exception"]}
    assert [f.code for f in dataflow_findings(build_notebook([skipped, raising]).cells)] == []


def test_cells_carry_their_number_and_execution_count():
    nb = build_notebook([{"markdown": "# t"}, {"source": "print(a)", "count": 2}, "a = 1"])
    found = dataflow_findings(nb.cells)
    assert [(f.cell, f.where, f.code) for f in found] == [(2, "cell 2 (In [2])", "NBH101")]


def test_magic_lines_are_read_as_ipython_runs_them():
    names = cell_names("%timeit -n 10 -r 3 f(x)\nout = !ls\n%time y = g(z)")
    assert names.now == ["f", "x", "g", "z"]
    assert names.defines == {"out", "y"}
    assert cell_names("%%capture captured\nprint(1)").defines == {"captured"}
    assert cell_names("%%writefile f.py\nimport os").defines == set()


def test_dependents_follow_names_through_cells():
    nb = cells("a = 1", "b = a + 1", "c = 5", "print(b)", "d = c", "a_list = [a]\na_list.append(c)")
    assert dependents(nb, {1}) == {2, 4, 6}
    assert dependents(nb, {3}) == {5, 6}


def write(path: Path, sources: list[str], language: str = "python") -> Path:
    nb = build_notebook(sources)
    nb.metadata["kernelspec"]["language"] = language
    nbformat.write(nb, path)
    return path


def test_the_command_prints_one_coded_line_per_finding(tmp_path, capsys):
    write(tmp_path / "bad.ipynb", ["print(total)", "total = 1", "print(ghost)"])
    write(tmp_path / "good.ipynb", ["x = 1", "print(x)"])
    write(tmp_path / "other.ipynb", ["echo $undefined"], language="bash")
    assert main(["check", "--dataflow", str(tmp_path)]) == 1
    bad = tmp_path / "bad.ipynb"
    assert capsys.readouterr().out.splitlines() == [
        f"{bad}: cell 1 NBH101 'total' is used before cell 2 defines it",
        f"{bad}: cell 3 NBH102 no cell defines 'ghost'",
    ]
    assert main(["check", "--dataflow", str(tmp_path / "good.ipynb")]) == 0


def test_json_select_and_ignore(tmp_path, capsys):
    path = write(tmp_path / "bad.ipynb", ["print(total)", "total = 1", "print(ghost)"])
    assert main(["check", "--dataflow", "--format", "json", str(path)]) == 1
    listed = json.loads(capsys.readouterr().out)
    assert [(p["path"], p["cell"], p["code"]) for p in listed] == [
        (str(path), 1, "NBH101"),
        (str(path), 3, "NBH102"),
    ]
    assert listed[0]["message"] == "cell 1 'total' is used before cell 2 defines it"
    assert main(["check", "--dataflow", "--ignore", "NBH101,NBH102", str(path)]) == 0
    assert main(["check", "--dataflow", "--select", "NBH102", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: cell 3 NBH102 no cell defines 'ghost'"
    ]


def test_a_redefinition_after_a_use_is_reported_only_when_selected(tmp_path, capsys):
    path = write(tmp_path / "redefined.ipynb", ["total = 1", "print(total)", "total = 2"])
    assert main(["check", "--dataflow", str(path)]) == 0
    assert main(["check", "--dataflow", "--select", "NBH1", str(path)]) == 0
    assert main(["check", "--dataflow", "--select", "NBH103", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: cell 3 NBH103 'total' is redefined after cell 2 used it: "
        "re-running cell 2 now would give another result"
    ]


def test_an_unknown_code_is_refused_in_one_line(tmp_path, capsys):
    path = write(tmp_path / "a.ipynb", ["x = 1"])
    assert main(["check", "--dataflow", "--select", "NBH9", str(path)]) == 2
    assert capsys.readouterr().err == "nbharness check: no rule code starts with 'NBH9'\n"


def test_third_party_notebooks_that_run_clean_have_no_findings(capsys):
    notebooks = sorted(THIRD_PARTY.glob("*.ipynb"))
    assert len(notebooks) >= 8
    assert main(["check", "--dataflow", "--order", *map(str, notebooks)]) == 0
    assert capsys.readouterr().out == ""


def test_the_pytest_item_names_the_cell_and_runs_after_the_order_item(pytester, make_notebook):
    make_notebook("bad.ipynb", ["print(total)", "total = 1"])
    make_notebook("good.ipynb", ["total = 1", "print(total)"])
    pytester.makeini("[pytest]\nnb_check_order = true\nnb_check_dataflow = true\n")
    result = pytester.runpytest("--nb", "-v", "-k", "dataflow or execution")
    result.assert_outcomes(passed=3, failed=1)
    expect(
        result.stdout,
        [
            "bad.ipynb::execution-order PASSED*",
            "bad.ipynb::dataflow FAILED*",
            "good.ipynb::execution-order PASSED*",
            "good.ipynb::dataflow PASSED*",
            "*_ bad.ipynb (dataflow) _*",
            "a clean run would not find every name: "
            "cell 1 NBH101 'total' is used before cell 2 defines it",
        ],
    )


def test_the_pre_commit_hooks_fail_on_a_notebook_with_a_finding(tmp_path, pre_commit):
    project = tmp_path / "project"
    project.mkdir()
    write(project / "bad.ipynb", ["print(total)", "total = 1"])
    run = pre_commit(project, ["nbharness-check-dataflow", "nbharness-check-fresh"], [])
    result = run("bad.ipynb")
    assert result.returncode == 1
    assert "bad.ipynb: cell 1 NBH101 'total' is used before cell 2 defines it" in result.stdout
    assert "bad.ipynb: NBH301 has no freshness record" in result.stdout


def test_what_python_warns_about_a_cell_is_not_the_lints_business():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cell_names('pattern = "\\d+"\nvalue = 1if True else 2').defines == {
            "pattern",
            "value",
        }
