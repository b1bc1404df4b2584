"""Paired scripts: content-based sync, outputs kept true, conflicts refused, on real git repos."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import git
import nbformat
import pytest

from nbharness.cli import main
from nbharness.vcs.export import ExportError, ExportOutOfDate
from nbharness.vcs.sync import NotATwin, SyncConflict

from .helpers import build_notebook

ROOT = Path(__file__).resolve().parents[1]

CELLS = [
    {"markdown": "# Report"},
    {"source": "x = 1", "count": 1, "outputs": []},
    {
        "source": "print(x)",
        "count": 2,
        "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
    },
]


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.nbharness]\npairing = "py:percent"\n')
    nbformat.write(build_notebook(CELLS), tmp_path / "report.ipynb")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cells(path):
    return nbformat.read(path, as_version=4).cells


def test_a_missing_twin_is_created_without_a_version_stamp(project, capsys):
    assert main(["sync", "."]) == 0
    script = (project / "report.py").read_text()
    assert "# %%\nx = 1\n" in script
    assert "jupytext_version:" not in script
    assert capsys.readouterr().out.splitlines() == ["wrote report.py", "wrote report.ipynb"]
    assert main(["sync", "."]) == 0
    assert capsys.readouterr().out == ""


def test_a_script_edit_reaches_the_notebook_keeping_unchanged_cells_outputs(project):
    main(["sync", "."])
    script = project / "report.py"
    script.write_text(script.read_text().replace("x = 1", "x = 2"))
    assert main(["sync", "."]) == 0
    code = cells(project / "report.ipynb")
    assert code[1].source == "x = 2"
    assert code[1].outputs == []
    assert code[1].execution_count is None
    assert code[2].outputs[0]["text"] == "1\n"
    assert code[2].id == "cell-3"


def test_a_notebook_edit_reaches_the_script(project):
    main(["sync", "."])
    nb = nbformat.read(project / "report.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("y = x + 1", id="new-cell"))
    nbformat.write(nb, project / "report.ipynb")
    assert main(["sync", "."]) == 0
    assert (project / "report.py").read_text().endswith("# %%\ny = x + 1\n")


def test_touching_files_or_a_fresh_clone_changes_nothing(project, tmp_path_factory, capsys):
    main(["sync", "."])
    with git.Repo.init(project) as repo:
        repo.index.add(["pyproject.toml", "report.ipynb", "report.py"])
        repo.index.commit("paired")
        clone_path = tmp_path_factory.mktemp("clone") / "repo"
        git.Repo.clone_from(project, clone_path).close()
    (project / "report.py").touch()
    capsys.readouterr()
    assert main(["sync", str(project)]) == 0
    assert main(["sync", str(clone_path)]) == 0
    assert capsys.readouterr().out == ""


def test_both_sides_changed_is_refused_with_diffs_against_the_last_synced_text(project, capsys):
    main(["sync", "."])
    with git.Repo.init(project) as repo:
        repo.index.add(["pyproject.toml", "report.ipynb", "report.py"])
        repo.index.commit("paired")
    script = project / "report.py"
    script.write_text(script.read_text().replace("x = 1", "x = 3"))
    raw = json.loads((project / "report.ipynb").read_text())
    raw["cells"][2]["source"] = "print(x * 10)"
    (project / "report.ipynb").write_text(json.dumps(raw))
    before = script.read_bytes(), (project / "report.ipynb").read_bytes()
    capsys.readouterr()
    assert main(["sync", "."]) == 1
    err = capsys.readouterr().err
    assert "report.ipynb and report.py both changed since they were last synced" in err
    assert "--- last synced" in err
    assert "+x = 3" in err
    assert "+print(x * 10)" in err
    assert "nbharness sync --prefer notebook report.ipynb" in err
    assert (script.read_bytes(), (project / "report.ipynb").read_bytes()) == before
    assert main(["sync", "--prefer", "script", "."]) == 0
    assert cells(project / "report.ipynb")[2].source == "print(x)"
    assert cells(project / "report.ipynb")[1].source == "x = 3"


def test_notebooks_without_pairing_are_left_alone(tmp_path, monkeypatch):
    nbformat.write(build_notebook(["x = 1"]), tmp_path / "lone.ipynb")
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "."]) == 0
    assert not (tmp_path / "lone.py").exists()


def test_the_notebooks_own_jupytext_formats_pair_it(tmp_path, monkeypatch):
    nbformat.write(
        build_notebook(["x = 1"], jupytext={"formats": "ipynb,md:myst"}), tmp_path / "own.ipynb"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "."]) == 0
    assert "```{code-cell}" in (tmp_path / "own.md").read_text()


def test_check_and_the_pytest_item_report_missing_and_stale_twins(pytester, capsys):
    pytester.makepyprojecttoml('[tool.nbharness]\npairing = "py:percent"\n')
    nbformat.write(build_notebook(["x = 1"]), pytester.path / "a.ipynb")
    nbformat.write(build_notebook(["y = 1"]), pytester.path / "b.ipynb")
    result = pytester.runpytest("--nb", "--nb-check-pairing", "-k", "pairing")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["no twin a.py (run nbharness sync a.ipynb)"])
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pytester.path)
        assert main(["sync", "a.ipynb"]) == 0
        capsys.readouterr()
        assert main(["check", "--pairing", "."]) == 1
        assert capsys.readouterr().out.splitlines() == [
            "b.ipynb: no twin b.py (run nbharness sync b.ipynb)"
        ]
    pytester.runpytest("--nb", "--nb-check-pairing", "a.ipynb::pairing").assert_outcomes(passed=1)


def test_a_failure_report_points_into_the_paired_script(pytester):
    pytester.makepyprojecttoml('[tool.nbharness]\npairing = "py:percent"\n')
    cells = [{"markdown": "# Ratio"}, "x = 1", "def ratio(a):\n    return a / 0", "y = 2\nratio(x)"]
    nbformat.write(build_notebook(cells), pytester.path / "ratio.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pytester.path)
        assert main(["sync", "ratio.ipynb"]) == 0
    lines = (pytester.path / "ratio.py").read_text().splitlines()
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["In the paired script: ratio.py:*"])
    location = next(line for line in result.stdout.lines if line.startswith("In the paired"))
    number = int(location.rsplit(":", 1)[1])
    assert lines[number - 1] == "ratio(x)"


def test_git_diff_shows_a_notebook_as_review_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    nbformat.write(build_notebook(CELLS), tmp_path / "report.ipynb")
    with git.Repo.init(tmp_path) as repo:
        assert main(["config-git"]) == 0
        repo.index.add(["report.ipynb", ".gitattributes"])
        repo.index.commit("notebook")
    raw = json.loads((tmp_path / "report.ipynb").read_text())
    raw["cells"][1]["source"] = "x = 2"
    raw["cells"][2]["outputs"][0]["text"] = ["2\n"]
    (tmp_path / "report.ipynb").write_text(json.dumps(raw))
    diff = subprocess.run(["git", "diff"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "-x = 1" in diff.stdout
    assert "+x = 2" in diff.stdout
    assert "-# cell 3: stdout (1 lines) 1" in diff.stdout
    assert "+# cell 3: stdout (1 lines) 2" in diff.stdout
    assert '"source"' not in diff.stdout


SCRIPT = """\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %%
x = 40 + 2

# %%
assert x == 42
"""


def test_script_only_notebooks_run_with_nb_scripts_and_pairs_run_once(pytester):
    (pytester.path / "only_script.py").write_text(SCRIPT)
    (pytester.path / "paired.py").write_text(SCRIPT)
    nbformat.write(build_notebook(["y = 1"]), pytester.path / "paired.ipynb")
    (pytester.path / "helper.py").write_text("VALUE = 1\n")
    result = pytester.runpytest("--nb", "--nb-scripts", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["only_script.py::only_script PASSED*", "paired.ipynb::paired PASSED*"]
    )
    pytester.runpytest("--nb", "-v").assert_outcomes(passed=1)


MERGE_CELLS = [
    {"source": "a = 1", "count": 1, "outputs": []},
    {"source": "b = 2", "count": 2, "outputs": []},
    {
        "source": "print(a + b)",
        "count": 3,
        "outputs": [{"output_type": "stream", "name": "stdout", "text": "3\n"}],
    },
]


def _edit(path, index, source):
    raw = json.loads(path.read_text())
    raw["cells"][index]["source"] = source
    path.write_text(json.dumps(raw, indent=1))


@pytest.fixture
def merge_repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    nbformat.write(build_notebook(MERGE_CELLS), tmp_path / "nb.ipynb")
    repo = git.Repo.init(tmp_path, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "Test")
        config.set_value("user", "email", "test@example.invalid")
    assert main(["config-git"]) == 0
    repo.index.add(["nb.ipynb", ".gitattributes"])
    repo.index.commit("base")
    repo.git.checkout("-b", "theirs")
    yield repo
    repo.close()


def test_a_merge_of_edits_to_different_cells_is_clean_and_keeps_outputs(merge_repo, tmp_path):
    _edit(tmp_path / "nb.ipynb", 1, "b = 20")
    merge_repo.index.add(["nb.ipynb"])
    merge_repo.index.commit("theirs: b")
    merge_repo.git.checkout("main")
    _edit(tmp_path / "nb.ipynb", 0, "a = 10")
    merge_repo.index.add(["nb.ipynb"])
    merge_repo.index.commit("ours: a")
    merge_repo.git.merge("theirs", "--no-edit")
    merged = nbformat.read(tmp_path / "nb.ipynb", as_version=4)
    assert [cell.source for cell in merged.cells] == ["a = 10", "b = 20", "print(a + b)"]
    assert merged.cells[2].outputs[0]["text"] == "3\n"


def test_a_merge_of_edits_to_one_cell_reports_a_conflict_in_a_valid_notebook(merge_repo, tmp_path):
    _edit(tmp_path / "nb.ipynb", 1, "b = 20")
    merge_repo.index.add(["nb.ipynb"])
    merge_repo.index.commit("theirs: b")
    merge_repo.git.checkout("main")
    _edit(tmp_path / "nb.ipynb", 1, "b = 30")
    merge_repo.index.add(["nb.ipynb"])
    merge_repo.index.commit("ours: b")
    with pytest.raises(git.GitCommandError):
        merge_repo.git.merge("theirs", "--no-edit")
    merged = nbformat.read(tmp_path / "nb.ipynb", as_version=4)
    sources = "\n".join(cell.source for cell in merged.cells)
    assert "<<<<<<< ours" in sources
    assert "b = 30" in sources
    assert "b = 20" in sources
    assert merged.cells[-1].outputs[0]["text"] == "3\n"


def test_strip_outputs_clears_the_notebook_and_leaves_the_script(project, capsys):
    assert main(["sync", "--strip-outputs", "."]) == 0
    assert all(not cell.get("outputs") for cell in cells(project / "report.ipynb"))
    script = (project / "report.py").read_bytes()
    capsys.readouterr()
    assert main(["sync", "--strip-outputs", "."]) == 0
    assert capsys.readouterr().out == ""
    assert (project / "report.py").read_bytes() == script


@pytest.mark.slow
def test_the_sync_hook_runs_under_pre_commit_and_fails_when_it_wrote(project, pre_commit):
    hooks = ["nbharness-sync", "nbharness-check"]
    run = pre_commit(project, hooks, ["pyproject.toml", "report.ipynb"])
    first = run("report.ipynb")
    assert first.returncode == 1
    assert "then: git add report.py report.ipynb" in first.stdout
    second = run("report.ipynb")
    assert second.returncode == 0, second.stdout


def test_naming_the_script_syncs_its_notebook(project):
    main(["sync", "."])
    script = project / "report.py"
    script.write_text(script.read_text().replace("x = 1", "x = 5"))
    assert main(["sync", "report.py"]) == 0
    assert script.read_text().startswith("# ---")
    assert cells(project / "report.ipynb")[1].source == "x = 5"


def test_a_script_edit_keeps_an_older_notebook_valid_and_moved_cells_keep_outputs(project):
    raw = json.loads((project / "report.ipynb").read_text())
    raw["nbformat_minor"] = 4
    for cell in raw["cells"]:
        cell.pop("id")
    (project / "report.ipynb").write_text(json.dumps(raw))
    main(["sync", "."])
    script = project / "report.py"
    text = script.read_text()
    moved = text.replace("# %%\nx = 1\n\n# %%\nprint(x)\n", "# %%\nprint(x)\n\n# %%\nx = 2\n")
    assert moved != text
    script.write_text(moved)
    assert main(["sync", "."]) == 0
    nb = nbformat.read(project / "report.ipynb", as_version=4)
    nbformat.validate(nb)
    assert [cell.source for cell in nb.cells[1:]] == ["print(x)", "x = 2"]
    assert nb.cells[1].outputs[0]["text"] == "1\n"
    assert "id" not in nb.cells[2]


def test_an_edited_markdown_cell_keeps_its_attachment(project):
    raw = json.loads((project / "report.ipynb").read_text())
    raw["cells"][0]["source"] = "# Report\n![logo](attachment:logo.png)"
    raw["cells"][0]["attachments"] = {"logo.png": {"image/png": "iVBORw0KGgo="}}
    (project / "report.ipynb").write_text(json.dumps(raw))
    main(["sync", "."])
    script = project / "report.py"
    script.write_text(script.read_text().replace("# # Report", "# # Annual report"))
    assert main(["sync", "."]) == 0
    assert cells(project / "report.ipynb")[0].attachments == {
        "logo.png": {"image/png": "iVBORw0KGgo="}
    }


def test_a_notebook_in_another_language_pairs_with_its_own_extension(project):
    nb = build_notebook(["x <- 1"], kernelspec={"name": "ir", "display_name": "R", "language": "R"})
    nb.metadata["language_info"] = {"name": "R", "file_extension": ".r"}
    nbformat.write(nb, project / "analysis.ipynb")
    assert main(["sync", "analysis.ipynb"]) == 0
    assert (project / "analysis.r").exists()
    assert not (project / "analysis.py").exists()


@pytest.mark.parametrize("value", ['"ipynb,py:percent"', '""', "1", '["py:percent"]'])
def test_a_bad_pairing_setting_is_one_line_naming_it(project, capsys, value):
    (project / "pyproject.toml").write_text(f"[tool.nbharness]\npairing = {value}\n")
    assert main(["sync", "."]) == 1
    err = capsys.readouterr().err
    assert "[tool.nbharness] pairing: expected a jupytext format such as 'py:percent'" in err
    assert "internal error" not in err


def test_odd_notebooks_fail_alone_in_one_line(project, capsys):
    (project / "pyproject.toml").write_text('[tool.nbharness]\npairing = "py:percent"\n')
    raw = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}
    (project / "old.ipynb").write_text(json.dumps(raw))
    assert main(["sync", ".", "missing.ipynb"]) == 1
    err = capsys.readouterr().err
    assert "missing.ipynb: no such file or folder" in err
    assert "old.ipynb is nbformat 3: open and save it with Jupyter" in err
    assert (project / "report.py").exists()
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("jupytext.toml", 'formats = "ipynb,py:percent"\n'),
        ("pyproject.toml", '[tool.jupytext]\nformats = "ipynb,py:percent"\n'),
    ],
)
def test_jupytext_users_configuration_pairs_their_notebooks(tmp_path, monkeypatch, name, text):
    (tmp_path / name).write_text(text)
    nbformat.write(build_notebook(["x = 1"]), tmp_path / "nb.ipynb")
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "."]) == 0
    assert (tmp_path / "nb.py").exists()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("../jupytext.toml", 'formats = "ipynb,py:percent"\n'),  # the repository's, above
        ("jupytext.yml", "formats:\n  - ipynb,py:percent\n"),  # another file, a list
    ],
    ids=["in-a-parent-folder", "a-yaml-list"],
)
def test_jupytext_finds_its_configuration_as_jupytext_does(tmp_path, monkeypatch, name, text):
    project = tmp_path / "sub"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.nbharness]\nexport_root = "src"\n')
    (project / name).write_text(text)
    nbformat.write(build_notebook(["x = 1"]), project / "nb.ipynb")
    monkeypatch.chdir(project)
    assert main(["sync", "."]) == 0
    assert "# %%\nx = 1\n" in (project / "nb.py").read_text()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            'formats = "ipynb,py:percent"\nnot_an_option = 1\n',
            "The Jupytext configuration file {file} is incorrect: options not_an_option are "
            "not supported",
        ),
        (
            'formats = "notebooks///ipynb,scripts///py:percent"\n',
            "{file}: formats: only formats that pair in the notebook's own folder, such as "
            "'ipynb,py:percent', are understood, not 'notebooks///ipynb,scripts///py:percent' "
            "(set [tool.nbharness] pairing and scripts_dir instead)",
        ),
    ],
    ids=["unknown-option", "folder-prefixes"],
)
def test_a_jupytext_configuration_we_cannot_follow_is_one_line_naming_it(
    tmp_path, monkeypatch, capsys, text, said
):
    (tmp_path / "jupytext.toml").write_text(text)
    nbformat.write(build_notebook(["x = 1"]), tmp_path / "nb.ipynb")
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "."]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [said.format(file=tmp_path / "jupytext.toml")]
    assert not (tmp_path / "nb.py").exists()


@pytest.mark.parametrize(
    "error",
    [
        SyncConflict(Path("a.ipynb"), Path("a.py"), ["--- last synced", "+++ notebook"]),
        NotATwin(Path("a.ipynb"), Path("a.py"), "it has no jupytext header"),
        ExportError("pkg/mod.py was edited by hand"),
        ExportError("'pkg.class' is not a module name", "a.ipynb"),
        ExportOutOfDate(["pkg/mod.py is missing", "pkg/other.py is out of date"]),
    ],
    ids=["conflict", "not-a-twin", "export", "export-naming-its-notebook", "out-of-date"],
)
def test_sync_and_export_errors_survive_pickling_for_xdist(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (str(copy), copy.details(), copy.args) == (str(error), error.details(), error.args)
    assert str(copy).startswith(("a.py", "a.ipynb", "pkg/mod.py"))


def test_a_users_global_jupytext_configuration_pairs_nothing(tmp_path, monkeypatch, capsys):
    """Only the project decides what pairs: a laptop and CI must agree."""
    (tmp_path / "config" / "jupytext").mkdir(parents=True)
    (tmp_path / "config" / "jupytext" / "jupytext.toml").write_text('formats = "ipynb,py"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "project").mkdir()
    nbformat.write(build_notebook(["x = 1"]), tmp_path / "project" / "nb.ipynb")
    monkeypatch.chdir(tmp_path / "project")
    assert main(["check", "--pairing", "."]) == 0
    assert main(["sync", "."]) == 0
    assert capsys.readouterr().out == ""
    assert not (tmp_path / "project" / "nb.py").exists()
