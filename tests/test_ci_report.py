"""GitHub Actions reports: ``::error`` annotations on the paired script's line, and the step
summary, from real pytest sessions on real kernels, alone and under xdist."""

from __future__ import annotations

from pathlib import Path

import git
import nbformat
import pytest

from nbharness.cli import main
from nbharness.publish import RunRecord
from nbharness.publish.github import annotation, escape_data, escape_property, step_summary

from .helpers import build_notebook

RATIO = [{"markdown": "# Ratio"}, "x = 1", "def ratio(a):\n    return a / 0", "y = 2\nratio(x)"]


@pytest.fixture
def github(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GitHub's environment for a run in the pytester directory; returns the summary file."""
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    return summary


@pytest.fixture
def paired_repo(pytester: pytest.Pytester) -> list[str]:
    """A git repository with a paired notebook that fails; the script's lines."""
    pytester.makepyprojecttoml('[tool.nbharness]\npairing = "py:percent"\n')
    nbformat.write(build_notebook(RATIO), pytester.path / "ratio.ipynb")
    nbformat.write(build_notebook(["print('fine')"]), pytester.path / "fine.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pytester.path)
        assert main(["sync", "ratio.ipynb"]) == 0
    with git.Repo.init(pytester.path) as repo:
        repo.index.add(["pyproject.toml", "ratio.ipynb", "ratio.py", "fine.ipynb"])
        repo.index.commit("notebooks")
    return (pytester.path / "ratio.py").read_text().splitlines()


def annotations(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith("::")]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_a_failure_is_annotated_once_at_the_paired_scripts_line(
    pytester, github, paired_repo, workers
):
    result = pytester.runpytest_subprocess("--nb", *workers)
    result.assert_outcomes(failed=1, passed=1)
    [line] = annotations(result)
    assert line == (
        f"::error file=ratio.py,line={paired_repo.index('ratio(x)') + 1},title=ratio.ipynb"
        "::cell 4 (In [3]) raised ZeroDivisionError: division by zero"
    )
    summary = github.read_text()
    assert summary.startswith("### Notebooks: 1 failed, 1 passed\n")
    assert summary.count("| `ratio.ipynb` | failed |") == 1


def test_the_step_summary_lists_failures_first_under_the_counts(pytester, github, paired_repo):
    pytester.runpytest("--nb").assert_outcomes(failed=1, passed=1)
    lines = github.read_text().splitlines()
    assert lines[0] == "### Notebooks: 1 failed, 1 passed"
    assert lines[2] == "| notebook | outcome | time | cached or ran | reason |"
    assert lines[4].startswith("| `ratio.ipynb` | failed | ")
    assert lines[4].endswith(
        " s | ran | cell 4 (In [3]) raised ZeroDivisionError: division by zero |"
    )
    assert lines[5].startswith("| `fine.ipynb` | passed | ")
    assert len(lines) == 6


def test_the_summary_is_appended_and_says_which_runs_were_cached(pytester, github):
    github.write_text("earlier step\n")
    nbformat.write(build_notebook(["print('fine')"]), pytester.path / "fine.ipynb")
    pytester.runpytest_subprocess("--nb", "--nb-cache").assert_outcomes(passed=1)
    pytester.runpytest_subprocess("--nb", "--nb-cache").assert_outcomes(skipped=1)
    text = github.read_text()
    assert text.startswith("earlier step\n### Notebooks: 1 passed\n")
    assert "### Notebooks: 1 cached\n" in text
    assert text.rstrip().splitlines()[-1].startswith("| `fine.ipynb` | skipped | ")
    assert "| cached | unchanged since last pass (--nb-cache) |" in text


def test_without_a_paired_script_the_annotation_names_the_notebook_and_cell(
    pytester, github, make_notebook, monkeypatch
):
    make_notebook("sub dir/calc.ipynb", ["x = 1", "raise ValueError('50%, then: more')"])
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path.parent))  # the rootdir is a subfolder
    result = pytester.runpytest("--nb")
    assert annotations(result) == [
        f"::error file={pytester.path.name}/sub dir/calc.ipynb,title=sub dir/calc.ipynb"
        "::cell 2 (In [2]) raised ValueError: 50%25, then: more"
    ]


def test_each_parameter_set_is_annotated_with_its_id(pytester, github, make_notebook):
    make_notebook(
        "fit.ipynb",
        [{"source": "n = 1", "tags": ["parameters"]}, "assert n < 2, n"],
        nbharness={"parameters": [{"id": "small", "n": 1}, {"id": "big", "n": 5}]},
    )
    result = pytester.runpytest_subprocess("--nb", "-n", "2")
    result.assert_outcomes(failed=1, passed=1)
    assert annotations(result) == [
        "::error file=fit.ipynb,title=fit.ipynb[big]::cell 2 (In [3]) raised AssertionError: 5"
    ]


def test_outside_github_actions_nothing_is_printed_or_written(pytester, make_notebook):
    make_notebook("calc.ipynb", ["raise ValueError('no')"])
    result = pytester.runpytest("--nb", "--junitxml=out.xml")
    result.assert_outcomes(failed=1)
    assert annotations(result) == []
    assert "nbharness_record" not in (pytester.path / "out.xml").read_text()


def test_the_report_record_stays_out_of_junit_xml(pytester, github, make_notebook):
    make_notebook("calc.ipynb", ["raise ValueError('no')"])
    pytester.runpytest("--nb", "--junitxml=out.xml").assert_outcomes(failed=1)
    junit = (pytester.path / "out.xml").read_text()
    assert "ValueError" in junit
    assert "nbharness_record" not in junit


def test_workflow_commands_escape_what_would_end_them():
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a,b: c%") == "a%2Cb%3A c%25"
    record = RunRecord(
        nodeid="n.ipynb::n[x,y]",
        title="n.ipynb[x,y]",
        notebook="n.ipynb",
        outcome="failed",
        reason="cell 1 raised KeyError: 'a:b'",
    )
    assert annotation(record) == (
        "::error file=n.ipynb,title=n.ipynb[x%2Cy]::cell 1 raised KeyError: 'a:b'"
    )
    assert annotation(RunRecord("p", "p", "p.ipynb", "passed")) is None


def test_a_reason_cannot_break_the_summary_table():
    record = RunRecord("n", "n.ipynb", "n.ipynb", "failed", reason="a | b\nc")
    assert step_summary([record]).splitlines()[-1] == (
        "| `n.ipynb` | failed | 0.00 s | ran | a \\| b c |"
    )


def test_a_step_summary_the_disk_refuses_is_one_line(pytester, github, make_notebook, monkeypatch):
    make_notebook("calc.ipynb", ["x = 1"])
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path))  # a folder, not a file
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [f"nbharness: step summary {pytester.path}: not written: Is a directory"]
    )
    assert "Traceback" not in result.stdout.str()
