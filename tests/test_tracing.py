"""Traced inputs: the project files a run read join --nb-cache and --nb-changed-since."""

from __future__ import annotations

import git
import pytest

from nbharness.plan.tracing import Tracing

from .helpers import expect

READS = (
    "import helpers, json\n"
    "rows = open('data/table.csv').read().splitlines()\n"
    "open('written.txt', 'w').write('not an input')\n"
    "print(len(rows), helpers.VALUE)"
)


@pytest.fixture
def project(pytester, make_notebook):
    make_notebook("reads.ipynb", [READS])
    make_notebook("other.ipynb", ["x = 1"])
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "table.csv").write_text("a,b\n1,2\n")
    (pytester.path / "helpers.py").write_text("VALUE = 1\n")
    return pytester


@pytest.mark.parametrize("launcher", ["fork", "process"])
def test_a_run_lists_the_project_files_it_read_and_nothing_else(project, launcher):
    project.runpytest("--nb", "--nb-launcher", launcher).assert_outcomes(passed=2)
    tracing = Tracing(project.path / ".pytest_cache" / "d" / "nbharness-traced", project.path)
    read = tracing.read_by(project.path / "reads.ipynb")
    assert sorted(path.relative_to(project.path).as_posix() for path in read) == [
        "data/table.csv",
        "helpers.py",
    ]
    assert tracing.read_by(project.path / "other.ipynb") == []


def test_a_changed_csv_or_local_module_runs_the_notebook_again(project):
    (project.path / "unrelated.txt").write_text("1")
    project.runpytest("--nb", "--nb-cache").assert_outcomes(passed=2)
    project.runpytest("--nb", "--nb-cache").assert_outcomes(skipped=2)
    (project.path / "data" / "table.csv").write_text("a,b\n1,2\n3,4\n")
    again = project.runpytest("--nb", "--nb-cache", "-v")
    again.assert_outcomes(passed=1, skipped=1)
    expect(again.stdout, ["*other.ipynb::other SKIPPED*", "*reads.ipynb::reads PASSED*"])
    project.runpytest("--nb", "--nb-cache").assert_outcomes(skipped=2)
    (project.path / "helpers.py").write_text("VALUE = 2\n")
    project.runpytest("--nb", "--nb-cache").assert_outcomes(passed=1, skipped=1)
    (project.path / "unrelated.txt").write_text("2")
    (project.path / "written.txt").write_text("changed by hand")
    project.runpytest("--nb", "--nb-cache").assert_outcomes(skipped=2)


def test_changed_since_selects_a_notebook_whose_data_changed(project):
    project.runpytest("--nb").assert_outcomes(passed=2)
    with git.Repo.init(project.path) as repo:
        repo.index.add(["reads.ipynb", "other.ipynb", "data/table.csv", "helpers.py"])
        repo.index.commit("notebooks and their data")
        (project.path / "data" / "table.csv").write_text("a,b\n9,9\n")
        result = project.runpytest("--nb", "--nb-changed-since", "HEAD", "-v")
        result.assert_outcomes(passed=1, deselected=1)
        expect(result.stdout, ["*reads.ipynb::reads PASSED*"])
        repo.git.checkout("--", "data/table.csv")
        (project.path / "helpers.py").write_text("VALUE = 3\n")
        result = project.runpytest("--nb", "--nb-changed-since", "HEAD", "-v")
        result.assert_outcomes(passed=1, deselected=1)


def test_changed_since_in_a_fresh_clone_reads_the_inputs_from_the_record(project, tmp_path):
    """CI checks out a clean tree, with no pytest cache: the freshness record that
    --nb-update-outputs stored in the notebook names what it read."""
    project.runpytest("--nb", "--nb-update-outputs").assert_outcomes(passed=2)
    files = ["reads.ipynb", "other.ipynb", "data/table.csv", "helpers.py"]
    with git.Repo.init(project.path) as repo:
        repo.index.add(files)
        repo.index.commit("notebooks with their outputs, and their data")
        repo.clone(tmp_path / "clone").close()
    clone = tmp_path / "clone"
    assert not (clone / ".pytest_cache").exists()
    (clone / "data" / "table.csv").write_text("a,b\n9,9\n")
    args = ["--nb", "--nb-changed-since", "HEAD", "-v", "--rootdir", str(clone), str(clone)]
    result = project.runpytest(*args)
    result.assert_outcomes(passed=1, deselected=1)
    expect(result.stdout, ["*reads.ipynb::reads PASSED*"])
