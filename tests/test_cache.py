"""Skip what cannot have changed: --nb-cache, and --nb-changed-since on real git repos."""

from __future__ import annotations

import git
import nbformat
import pytest

from .helpers import build_notebook, expect


def test_a_passed_run_is_skipped_until_something_that_matters_changes(pytester, make_notebook):
    make_notebook("a.ipynb", ["x = 1"])
    make_notebook("b.ipynb", ["1/0"])
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(passed=1, failed=1)
    again = pytester.runpytest("--nb", "--nb-cache", "-rs")
    again.assert_outcomes(skipped=1, failed=1)
    expect(again.stdout, ["SKIPPED [1] a.ipynb:1: unchanged since last pass (--nb-cache)"])
    make_notebook("a.ipynb", ["x = 2"])
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(passed=1, failed=1)
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(skipped=1, failed=1)
    pytester.runpytest("--nb", "--nb-cache", "--nb-timeout", "99").assert_outcomes(
        passed=1, failed=1
    )


def test_declared_inputs_are_part_of_the_key(pytester, make_notebook):
    make_notebook("reads.ipynb", ["print(open('data/table.csv').read())"])
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "table.csv").write_text("a,b\n1,2\n")
    pytester.makepyprojecttoml('[tool.nbharness]\ncache_inputs = ["data/*.csv"]\n')
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(passed=1)
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(skipped=1)
    (pytester.path / "data" / "table.csv").write_text("a,b\n1,3\n")
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(passed=1)


def test_each_parameter_set_is_cached_on_its_own(pytester, make_notebook):
    sets = [{"id": "ok", "n": 1}, {"id": "bad", "n": 0}]
    make_notebook(
        "p.ipynb",
        [{"source": "n = 1", "tags": ["parameters"]}, "1 / n"],
        nbharness={"parameters": sets},
    )
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(passed=1, failed=1)
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(skipped=1, failed=1)


@pytest.mark.slow
def test_the_cache_works_across_xdist_workers(pytester, make_notebook):
    for n in range(3):
        make_notebook(f"nb{n}.ipynb", [f"x = {n}"])
    pytester.runpytest_subprocess("--nb", "--nb-cache", "-n", "2").assert_outcomes(passed=3)
    pytester.runpytest_subprocess("--nb", "--nb-cache", "-n", "2").assert_outcomes(skipped=3)


@pytest.fixture
def repo(pytester, make_notebook):
    make_notebook("kept.ipynb", ["x = 1"])
    make_notebook("edited.ipynb", ["x = 1"])
    make_notebook("staged.ipynb", ["x = 1"])
    (pytester.path / "shared.py").write_text("VALUE = 1\n")
    pytester.makepyfile(test_plain="def test_ordinary():\n    pass\n")
    repository = git.Repo.init(pytester.path)
    repository.index.add(
        ["kept.ipynb", "edited.ipynb", "staged.ipynb", "shared.py", "test_plain.py"]
    )
    repository.index.commit("notebooks")
    yield repository
    repository.close()


def test_changed_since_keeps_edited_staged_and_untracked_notebooks(pytester, make_notebook, repo):
    make_notebook("edited.ipynb", ["x = 2"])
    make_notebook("staged.ipynb", ["x = 3"])
    repo.index.add(["staged.ipynb"])
    make_notebook("new.ipynb", ["x = 4"])
    result = pytester.runpytest("--nb", "--nb-changed-since", "HEAD", "-v")
    result.assert_outcomes(passed=4, deselected=1)
    expect(
        result.stdout,
        [
            "edited.ipynb::edited PASSED*",
            "new.ipynb::new PASSED*",
            "staged.ipynb::staged PASSED*",
            "test_plain.py::test_ordinary PASSED*",
        ],
    )


def test_a_changed_declared_input_selects_every_notebook(pytester, repo):
    pytester.makepyprojecttoml('[tool.nbharness]\ncache_inputs = ["shared.py"]\n')
    repo.index.add(["pyproject.toml"])
    repo.index.commit("config")
    (pytester.path / "shared.py").write_text("VALUE = 2\n")
    pytester.runpytest("--nb", "--nb-changed-since", "HEAD").assert_outcomes(passed=4)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no-such-branch", "'no-such-branch' is not a commit in *"),
        ("HEAD", "*is not in a git repository"),
    ],
)
def test_a_bad_ref_or_no_repository_is_a_usage_error(pytester, make_notebook, ref, message):
    make_notebook("a.ipynb", ["x = 1"])
    if ref != "HEAD":
        with git.Repo.init(pytester.path) as repository:
            repository.index.commit("empty")
    result = pytester.runpytest("--nb", "--nb-changed-since", ref)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--nb-changed-since: {message}"])


def test_changed_since_keeps_a_notebook_whose_exported_module_changed(pytester, repo):

    pytester.makepyprojecttoml('[tool.nbharness]\nexport_root = "src"\n')
    nbformat.write(
        build_notebook(["#| default_exp lib", "#| export\nX = 1"]), pytester.path / "exports.ipynb"
    )
    (pytester.path / "src").mkdir()
    (pytester.path / "src" / "lib.py").write_text("X = 1\n")
    repo.index.add(["pyproject.toml", "exports.ipynb", "src/lib.py"])
    repo.index.commit("exporting notebook")
    (pytester.path / "src" / "lib.py").write_text("X = 2\n")
    result = pytester.runpytest("--nb", "--nb-changed-since", "HEAD", "-v")
    result.assert_outcomes(passed=2, deselected=3)
    expect(result.stdout, ["exports.ipynb::exports PASSED*"])


def test_changed_since_keeps_a_notebook_whose_paired_script_changed(pytester, repo):
    pytester.makepyprojecttoml('[tool.nbharness]\npairing = "py:percent"\n')
    (pytester.path / "kept.py").write_text("# %%\nx = 1\n")
    repo.index.add(["pyproject.toml", "kept.py"])
    repo.index.commit("paired")
    (pytester.path / "kept.py").write_text("# %%\nx = 2\n")
    result = pytester.runpytest("--nb", "--nb-changed-since", "HEAD", "-v")
    expect(result.stdout, ["kept.ipynb::kept PASSED*"])
    assert "edited.ipynb" not in result.stdout.str()


def test_an_unchanged_notebook_and_its_tests_are_reported_skipped_everywhere(
    pytester, make_notebook
):
    """Skipped without pytest's setup: the terminal, JUnit and the reports still see them."""
    make_notebook(
        "t.ipynb",
        ["def add(a, b):\n    return a + b", "def test_add():\n    assert add(1, 2) == 3"],
    )
    pytester.runpytest("--nb", "--nb-cache").assert_outcomes(passed=2)
    again = pytester.runpytest("--nb", "--nb-cache", "-rs", "--junitxml=junit.xml")
    again.assert_outcomes(skipped=2)
    expect(
        again.stdout,
        [
            "SKIPPED [1] t.ipynb:1: unchanged since last pass (--nb-cache)",
            "SKIPPED [1] t.ipynb:1: not run: unchanged since last pass (--nb-cache)",
        ],
    )
    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count("<testcase") == junit.count("<skipped") == 2
