"""Tests inside notebooks: ``def test_…`` in a cell is an item run in the notebook's own
kernel, and every cell's ``assert`` explains itself."""

from __future__ import annotations

import uuid
from pathlib import Path

import nbformat
import pytest

from nbharness.notebook_tests.discover import find_tests

from .helpers import MakeNotebook, build_notebook, expect
from .hubfixture import HubUser

#: A cell that counts the notebook's runs in a file next to it.
COUNT_RUNS = "with open('runs.txt', 'a') as runs:\n    runs.write('run\\n')"

CALC = [
    "import pytest\n\ndef f(x):\n    return x + 1",
    COUNT_RUNS,
    "def test_f_ok():\n    assert f(1) == 2\n\n"
    "def test_f_bad():\n    values = [1, 2, 3]\n    assert len(values) == 4",
    "@pytest.mark.parametrize('x', [1, 2, 3])\ndef test_param(x):\n    assert f(x) > 2",
    "def test_uses_conftest(answer, tmp_path):\n    assert answer == 42",
    "class TestGroup:\n    def test_one(self):\n        pass\n\n"
    "    @pytest.mark.skip(reason='not today')\n    def test_two(self):\n        pass",
]

CONFTEST = "import pytest\n\n@pytest.fixture\ndef answer():\n    return 42\n"


@pytest.fixture
def calc(pytester: pytest.Pytester, make_notebook: MakeNotebook) -> Path:
    pytester.makeconftest(CONFTEST)
    return make_notebook("calc.ipynb", CALC)


def test_each_test_is_an_item_with_pytests_outcome_and_message(
    pytester: pytest.Pytester, calc: Path
) -> None:
    result = pytester.runpytest("--nb", "-v")
    result.assert_outcomes(passed=6, failed=2, skipped=1)
    expect(
        result.stdout,
        [
            "calc.ipynb::calc PASSED*",
            "calc.ipynb::test_f_ok PASSED*",
            "calc.ipynb::test_f_bad FAILED*",
            "calc.ipynb::test_param[1] FAILED*",
            "calc.ipynb::test_param[2] PASSED*",
            "calc.ipynb::test_param[3] PASSED*",
            "calc.ipynb::test_uses_conftest PASSED*",
            "calc.ipynb::TestGroup::test_one PASSED*",
            "calc.ipynb::TestGroup::test_two SKIPPED (not today)*",
        ],
    )
    expect(
        result.stdout,
        [
            "*_ test_f_bad in calc.ipynb _*",
            "    def test_f_bad():",
            ">       assert len(values) == 4",
            "E       assert 3 == 4",
            "E        +  where 3 = len([1, 2, 3])",
            "cell 3 (In [3]), line 6: AssertionError",
        ],
    )
    expect(result.stdout, ["FAILED calc.ipynb::test_param[1] - assert 2 > 2"])
    assert (pytester.path / "runs.txt").read_text() == "run\n"


def test_collect_only_lists_the_tests_without_running_the_notebook(
    pytester: pytest.Pytester, calc: Path
) -> None:
    result = pytester.runpytest("--nb", "--collect-only", "-q")
    expect(
        result.stdout, ["calc.ipynb::calc", "calc.ipynb::test_f_ok", "calc.ipynb::test_param[3]"]
    )
    assert not (pytester.path / "runs.txt").exists()


def test_k_selects_one_test_and_the_notebook_still_runs_once(
    pytester: pytest.Pytester, calc: Path
) -> None:
    result = pytester.runpytest("--nb", "-v", "-k", "test_f_bad")
    result.assert_outcomes(failed=1, deselected=8)
    expect(result.stdout, ["FAILED calc.ipynb::test_f_bad - assert 3 == 4"])
    assert (pytester.path / "runs.txt").read_text() == "run\n"


def test_each_parameter_set_runs_the_tests_in_its_own_run(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook(
        "scaled.ipynb",
        [
            {"source": "n = 1", "tags": ["parameters"]},
            "import pytest\n" + COUNT_RUNS,
            "def test_positive():\n    assert n > 0\n\n"
            "@pytest.mark.parametrize('k', [1, 2])\ndef test_small(k):\n    assert k * n < 5",
        ],
        nbharness={"parameters": [{"id": "one", "n": 1}, {"id": "three", "n": 3}]},
    )
    result = pytester.runpytest("--nb", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=7, failed=1)
    expect(
        result.stdout,
        [
            "scaled.ipynb::scaled[one] PASSED*",
            "scaled.ipynb::test_positive[one] PASSED*",
            "scaled.ipynb::test_small[1-one] PASSED*",
            "scaled.ipynb::test_small[2-one] PASSED*",
            "scaled.ipynb::scaled[three] PASSED*",
            "scaled.ipynb::test_positive[three] PASSED*",
            "scaled.ipynb::test_small[1-three] PASSED*",
            "scaled.ipynb::test_small[2-three] FAILED*",
        ],
    )
    expect(result.stdout, ["*_ test_small[2] in scaled.ipynb[three] _*"])
    assert (pytester.path / "runs.txt").read_text() == "run\nrun\n"
    only = pytester.runpytest("--nb", "-k", "test_small and three", "-p", "no:randomly")
    only.assert_outcomes(passed=1, failed=1, deselected=6)
    assert (pytester.path / "runs.txt").read_text() == "run\nrun\nrun\n"


def test_xdist_gives_the_same_verdicts_and_runs_each_notebook_once(
    pytester: pytest.Pytester, calc: Path, make_notebook: MakeNotebook
) -> None:
    make_notebook(
        "other/second.ipynb", [COUNT_RUNS, "def test_a():\n    pass\n\ndef test_b():\n    pass"]
    )
    result = pytester.runpytest_subprocess("--nb", "-n", "2")
    result.assert_outcomes(passed=9, failed=2, skipped=1)
    assert (pytester.path / "runs.txt").read_text() == "run\n"
    assert (pytester.path / "other" / "runs.txt").read_text() == "run\n"


@pytest.mark.parametrize(
    ("args", "dist"),
    [
        (["-n", "2"], "loadfile"),
        (["-n", "2", "--dist", "load"], "load"),
        (["-d", "-n", "2"], "load"),
    ],
    ids=["default", "--dist load", "-d"],
)
def test_loadfile_is_the_default_only_when_the_user_chose_no_dist_mode(
    pytester: pytest.Pytester, args: list[str], dist: str
) -> None:
    pytester.makeconftest(
        "def pytest_report_header(config):\n    return f'dist={config.option.dist}'\n"
    )
    result = pytester.runpytest("--nb", "--collect-only", *args)
    expect(result.stdout, [f"dist={dist}"])


def test_the_tests_of_a_failing_notebook_fail_in_one_line_naming_the_cell(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook("broken.ipynb", ["def test_a():\n    pass", "1 / 0"])
    result = pytester.runpytest("--nb", "-k", "test_a", "--tb=short")
    result.assert_outcomes(failed=1, deselected=1)
    expect(
        result.stdout,
        [
            "*_ test_a in broken.ipynb _*",
            "not run: the notebook failed: cell 2 (In [2]) raised ZeroDivisionError: "
            "division by zero",
            "*= short test summary info =*",
        ],
    )


def test_a_plain_cell_assert_explains_itself(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook("plain.ipynb", ["values = [1, 2, 3]\nassert len(values) == 4"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            "cell 1 (In [1]) raised AssertionError: assert 3 == 4",
            " +  where 3 = len([1, 2, 3])",
            "Source of cell 1 (In [1]):",
        ],
    )


@pytest.mark.parametrize(
    ("metadata", "ini"),
    [({"nbharness": {"rewrite_asserts": False}}, ""), ({}, "nb_no_rewrite_asserts = true")],
    ids=["notebook metadata", "ini option"],
)
def test_rewriting_is_turned_off_by_the_notebook_or_the_project(
    pytester: pytest.Pytester, make_notebook: MakeNotebook, metadata: dict[str, object], ini: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    make_notebook("plain.ipynb", ["values = [1, 2, 3]\nassert len(values) == 4"], **metadata)
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["FAILED plain.ipynb::plain - cell 1 (In [1]) raised AssertionError"])
    assert "where 3" not in result.stdout.str()


def test_the_notebooks_metadata_turns_rewriting_on_against_the_project(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    pytester.makeini("[pytest]\nnb_no_rewrite_asserts = true\n")
    make_notebook("plain.ipynb", ["assert [1] == [2]"], nbharness={"rewrite_asserts": True})
    result = pytester.runpytest("--nb")
    expect(result.stdout, ["*raised AssertionError: assert [1] == [2]"])


@pytest.mark.parametrize(
    "cells",
    [
        [
            "import ipytest\nipytest.autoconfig()",
            "%%ipytest\n" + "def test_good():\n    pass\n\n"
            "def test_broken():\n    assert [1, 2] == [1, 3]",
            "print('after')",
        ],
        [
            "import ipytest\nipytest.autoconfig()\n\ndef test_broken():\n    assert 0\n\n"
            "ipytest.run()"
        ],
    ],
    ids=["%%ipytest cell", "ipytest.run()"],
)
def test_failing_ipytest_tests_fail_the_notebook_naming_them(
    pytester: pytest.Pytester, make_notebook: MakeNotebook, cells: list[str]
) -> None:
    make_notebook("ipy.ipynb", cells)
    result = pytester.runpytest("--nb", "-k", "ipy and not test_")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        ["*raised TestsFailedInCell: pytest ran in this cell and 1 test failed: test_broken"],
    )
    assert "\x1b[" not in result.stdout.str()  # ipytest's colours are not in the report


def test_passing_ipytest_tests_pass(pytester: pytest.Pytester, make_notebook: MakeNotebook) -> None:
    make_notebook(
        "ipy.ipynb", ["import ipytest\nipytest.autoconfig()", "%%ipytest\ndef test_ok():\n    pass"]
    )
    pytester.runpytest("--nb").assert_outcomes(passed=1)


def test_cases_whose_ids_are_not_literal_are_one_item(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook(
        "var.ipynb",
        [
            "import pytest\nys = [1, 2, 5]",
            "@pytest.mark.parametrize('y', ys)\ndef test_small(y):\n    assert y < 2",
        ],
    )
    result = pytester.runpytest("--nb", "-v")
    result.assert_outcomes(passed=1, failed=1)
    expect(
        result.stdout,
        [
            "var.ipynb::test_small FAILED*",
            "2 of 3 cases failed",
            "test_small[2]:",
            "test_small[5]:",
        ],
    )


def test_a_test_whose_cell_did_not_run_says_so(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook(
        "skips.ipynb",
        [
            "def test_ran():\n    pass",
            {"source": "def test_never():\n    pass", "tags": ["skip-execution"]},
        ],
    )
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=2, failed=1)
    expect(
        result.stdout,
        ["test_never (cell 2) did not run in the kernel (tests that ran: test_ran)"],
    )


def test_a_notebook_whose_tests_failed_is_not_skipped_by_the_cache(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook("calc.ipynb", ["def test_ok():\n    pass\n\ndef test_bad():\n    assert 0"])
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(passed=2, failed=1)
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(passed=2, failed=1)


def test_without_pytest_in_the_kernel_one_line_says_so_and_the_notebook_runs(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    shadow = pytester.mkdir("no_pytest")
    (shadow / "pytest.py").write_text("raise ImportError('no pytest here')\n")
    make_notebook("calc.ipynb", ["x = 1\nassert x == 1", "def test_x():\n    assert x == 1"])
    result = pytester.runpytest("--nb", "-v", f"--nb-env=PYTHONPATH={shadow}")
    result.assert_outcomes(passed=1, failed=1)
    expect(
        result.stdout,
        ["FAILED calc.ipynb::test_x - not run: pytest is not importable in the kernel"],
    )


def test_the_fixture_runs_the_notebooks_tests(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook("calc.ipynb", CALC)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_calc="""
        def test_calc(notebook):
            outcomes = notebook("calc.ipynb").run_tests()
            assert outcomes["test_f_ok"].outcome == "passed"
            assert outcomes["test_uses_conftest"].outcome == "passed"
            assert outcomes["test_param[1]"].outcome == "failed"
            assert "where 2 = f(1)" in outcomes["test_param[1]"].text
            assert outcomes["TestGroup::test_two"].outcome == "skipped"

        def test_one(notebook):
            assert list(notebook("calc.ipynb").run_tests("test_f_ok")) == ["test_f_ok"]
        """
    )
    pytester.runpytest("test_calc.py").assert_outcomes(passed=2)


@pytest.mark.hub
def test_tests_run_on_a_hub_kernel_with_the_conftest_beside_the_notebook(
    pytester: pytest.Pytester, hub_user: HubUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebook is read here and runs there; the remote kernel's folder has the
    notebook and the conftest.py (as a deployment would), so its pytest finds both."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub_user.token)
    name = f"run-{uuid.uuid4().hex[:8]}"
    remote = hub_user.hub.root / "home" / hub_user.name / name
    remote.mkdir(parents=True)
    for folder in (pytester.path, remote):
        (folder / "conftest.py").write_text(CONFTEST)
        nbformat.write(build_notebook(CALC), folder / "calc.ipynb")
    result = pytester.runpytest_subprocess(
        "--nb",
        "--nb-hub-url",
        hub_user.hub.url,
        "--nb-hub-user",
        hub_user.name,
        "--nb-remote-cwd",
        name,
        "-p",
        "no:cacheprovider",
        timeout=300,
    )
    result.assert_outcomes(passed=6, failed=2, skipped=1)
    expect(result.stdout, ["E        +  where 3 = len([1, 2, 3])"])
    assert hub_user.hub.kernels(hub_user.name) == []


# Static discovery: what pytest would collect, read from the cells.


def ids_of(*cells: str) -> list[str]:
    return [test.id for test in find_tests(build_notebook(list(cells)))]


def test_discovery_finds_top_level_tests_in_order_and_not_nested_ones() -> None:
    assert ids_of(
        "def test_b():\n    def test_inner():\n        pass",
        "def helper():\n    pass\n\nasync def test_a():\n    pass",
        "def test_b():\n    pass",  # redefined: one item, at its first place
    ) == ["test_b", "test_a"]


def test_discovery_takes_classes_without_init_and_their_test_methods() -> None:
    assert ids_of(
        "class TestA:\n    def test_x(self):\n        pass\n    def helper(self):\n        pass",
        "class TestB:\n    def __init__(self):\n        pass\n    def test_y(self):\n        pass",
        "class Other:\n    def test_z(self):\n        pass",
    ) == ["TestA::test_x"]


def test_discovery_gives_pytests_ids_for_literal_parametrize() -> None:
    assert ids_of(
        "import pytest\n"
        "@pytest.mark.parametrize('a, b', [(1, 2), (3.5, None)])\ndef test_pairs(a, b): pass\n"
        "@pytest.mark.parametrize('x', [0, 1])\n"
        "@pytest.mark.parametrize('y', ['u', 'v'])\ndef test_stacked(x, y): pass\n"
        "@pytest.mark.parametrize('s', ['a', pytest.param('b', id='bee')], ids=['A', None])\n"
        "def test_named(s): pass\n"
    ) == [
        "test_pairs[1-2]",
        "test_pairs[3.5-None]",
        "test_stacked[u-0]",
        "test_stacked[u-1]",
        "test_stacked[v-0]",
        "test_stacked[v-1]",
        "test_named[A]",
        "test_named[bee]",
    ]


@pytest.mark.parametrize(
    "decorator",
    [
        "@pytest.mark.parametrize('x', values)",
        "@pytest.mark.parametrize('x', [object()])",
        "@pytest.mark.parametrize('x', ['a', 'a'])",
        "@pytest.mark.parametrize('x', ['héllo'])",
        "@pytest.mark.parametrize('x', [])",
    ],
    ids=["a variable", "a call", "duplicates", "non-ascii", "no cases"],
)
def test_ids_pytest_alone_can_tell_leave_the_bare_name(decorator: str) -> None:
    assert ids_of(f"import pytest\nvalues = [1]\n{decorator}\ndef test_v(x): pass") == ["test_v"]


def test_discovery_reads_past_magics_and_leaves_ipytest_cells_to_ipytest() -> None:
    assert ids_of(
        "%load_ext autoreload\n!ls\ndef test_after_magics():\n    %time 1\n",
        "%%ipytest\ndef test_ipytest_own():\n    pass",
        "def test_broken(:\n",
    ) == ["test_after_magics"]
