"""Data-loss faults in pairing, sync, merge and export (reliability trial, issue 23):
each test reproduces a trial finding on real files, real git and the real CLI."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import git
import nbformat
import pytest

from nbharness.cli import main

from .helpers import build_notebook

EXECUTED = {
    "source": "print(a + b)",
    "count": 3,
    "outputs": [{"output_type": "stream", "name": "stdout", "text": "3\n"}],
}
MERGE_CELLS = [
    {"source": "a = 1", "count": 1, "outputs": []},
    {"source": "b = 2", "count": 2, "outputs": []},
    EXECUTED,
    {"markdown": "# Notes"},
]


def _change(path: Path, edit) -> None:
    """Edit the notebook's JSON as Jupyter would save it (indent 1)."""
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw, indent=1) + "\n")


def _commit(repo: git.Repo, message: str) -> None:
    repo.index.add(["nb.ipynb"])
    repo.index.commit(message)


@pytest.fixture
def merge_repo(tmp_path, monkeypatch):
    """A repository set up by ``nbharness config-git``, on branch ``theirs`` off ``main``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    repo = _config_git_repo(tmp_path)
    yield repo
    repo.close()


def _config_git_repo(folder: Path) -> git.Repo:
    """A repository in ``folder`` (the working directory) with ``nb.ipynb`` committed on
    ``main`` after ``nbharness config-git``, checked out on a new branch ``theirs``."""
    nbformat.write(build_notebook(MERGE_CELLS), folder / "nb.ipynb")
    repo = git.Repo.init(folder, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "Test")
        config.set_value("user", "email", "test@example.invalid")
    assert main(["config-git"]) == 0
    repo.index.add([".gitattributes"])
    _commit(repo, "base")
    repo.git.checkout("-b", "theirs")
    return repo


def _tag(index: int, *tags: str):
    def edit(raw):
        raw["cells"][index]["metadata"]["tags"] = list(tags)

    return edit


def _skip(reason: str):
    def edit(raw):
        raw["metadata"].setdefault("nbharness", {})["skip"] = reason

    return edit


def _source(index: int, source: str):
    def edit(raw):
        raw["cells"][index]["source"] = source

    return edit


def test_a_merge_keeps_the_metadata_only_the_other_side_changed(merge_repo, tmp_path):
    notebook = tmp_path / "nb.ipynb"
    for edit in (_tag(2, "parameters"), _tag(3, "remark"), _skip("slow on CI")):
        _change(notebook, edit)
    _commit(merge_repo, "theirs: metadata only")
    merge_repo.git.checkout("main")
    _change(notebook, _source(0, "a = 10"))
    _commit(merge_repo, "ours: a")
    merge_repo.git.merge("theirs", "--no-edit")
    merged = nbformat.read(notebook, as_version=4)
    assert [cell.source for cell in merged.cells] == ["a = 10", "b = 2", "print(a + b)", "# Notes"]
    assert merged.cells[2].metadata["tags"] == ["parameters"]
    assert merged.cells[2].outputs[0]["text"] == "3\n"
    assert merged.cells[3].metadata["tags"] == ["remark"]
    assert merged.metadata["nbharness"]["skip"] == "slow on CI"


def test_a_merge_keeps_our_metadata_change_against_their_source_edit(merge_repo, tmp_path):
    notebook = tmp_path / "nb.ipynb"
    _change(notebook, _source(0, "a = 10"))
    _commit(merge_repo, "theirs: a")
    merge_repo.git.checkout("main")
    for edit in (_tag(1, "mine"), _skip("ours")):
        _change(notebook, edit)
    _commit(merge_repo, "ours: metadata")
    merge_repo.git.merge("theirs", "--no-edit")
    merged = nbformat.read(notebook, as_version=4)
    assert merged.cells[0].source == "a = 10"
    assert merged.cells[1].metadata["tags"] == ["mine"]
    assert merged.metadata["nbharness"]["skip"] == "ours"


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        pytest.param(_skip("theirs"), _skip("ours"), id="notebook-metadata"),
        pytest.param(_tag(2, "theirs"), _tag(2, "ours"), id="cell-tags"),
    ],
)
def test_metadata_changed_differently_on_both_sides_is_a_conflict(
    merge_repo, tmp_path, theirs, ours
):
    notebook = tmp_path / "nb.ipynb"
    _change(notebook, theirs)
    _commit(merge_repo, "theirs")
    merge_repo.git.checkout("main")
    _change(notebook, ours)
    _commit(merge_repo, "ours")
    with pytest.raises(git.GitCommandError) as raised:
        merge_repo.git.merge("theirs", "--no-edit")
    assert "CONFLICT" in raised.value.stdout
    merged = nbformat.read(notebook, as_version=4)  # still a notebook Jupyter opens
    nbformat.validate(merged)
    assert "print(a + b)" in "".join(cell.source for cell in merged.cells)


PAIRED_CELLS = [
    {"markdown": "# Report"},
    {"source": "x = 1", "count": 1, "outputs": [], "metadata": {"ExecuteTime": {"end": "t"}}},
    {
        "source": "print(x)",
        "count": 2,
        "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
    },
]


@pytest.fixture
def paired(tmp_path, monkeypatch):
    """A synced pair ``report.ipynb`` / ``report.py``."""
    (tmp_path / "pyproject.toml").write_text('[tool.nbharness]\npairing = "py:percent"\n')
    nbformat.write(build_notebook(PAIRED_CELLS), tmp_path / "report.ipynb")
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "."]) == 0
    return tmp_path


def _edit_script(project: Path, old: str, new: str) -> Path:
    script = project / "report.py"
    text = script.read_text()
    assert old in text
    script.write_text(text.replace(old, new, 1))
    return script


def test_a_tag_added_in_the_script_reaches_the_notebook(paired, capsys):
    _edit_script(paired, "# %%\nx = 1", '# %% tags=["parameters"]\nx = 1')
    script = _edit_script(paired, "# %%\nprint(x)", '# %% tags=["report"]\nprint(x)')
    edited = script.read_text()
    capsys.readouterr()
    assert main(["sync", "."]) == 0
    nb = nbformat.read(paired / "report.ipynb", as_version=4)
    assert nb.cells[1].metadata["tags"] == ["parameters"]
    assert nb.cells[1].metadata["ExecuteTime"] == {"end": "t"}  # not in the script: kept
    assert nb.cells[2].metadata["tags"] == ["report"]
    assert nb.cells[2].outputs[0]["text"] == "1\n"
    assert script.read_text() == edited
    assert capsys.readouterr().out == "wrote report.ipynb\n"
    assert main(["sync", "."]) == 0
    assert "wrote" not in capsys.readouterr().out


def test_a_tag_removed_in_the_script_leaves_the_notebook(paired):
    _edit_script(paired, "# %%\nx = 1", '# %% tags=["parameters"]\nx = 1')
    assert main(["sync", "."]) == 0
    _edit_script(paired, '# %% tags=["parameters"]\nx = 1', "# %%\nx = 1")
    assert main(["sync", "."]) == 0
    assert "tags" not in nbformat.read(paired / "report.ipynb", as_version=4).cells[1].metadata


def test_a_header_edit_in_the_script_reaches_the_notebook(paired):
    script = _edit_script(paired, "display_name: Python 3", "display_name: Analysis kernel")
    edited = script.read_text()
    assert main(["sync", "."]) == 0
    nb = nbformat.read(paired / "report.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["display_name"] == "Analysis kernel"
    assert nb.metadata["nbharness"]["synced"]
    assert script.read_text() == edited


MODULE = "def helper():\n    return 42\n"


def _rename(project: Path, new_stem: str) -> Path:
    with git.Repo.init(project) as repo:
        repo.index.add(["report.ipynb", "report.py"])
        repo.index.commit("pair")
        repo.git.mv("report.ipynb", f"{new_stem}.ipynb")
    return project / f"{new_stem}.ipynb"


def test_a_renamed_notebook_is_not_rebuilt_from_an_unrelated_module(paired, capsys):
    (paired / "utils.py").write_text(MODULE)
    notebook = _rename(paired, "utils")
    before = notebook.read_bytes()
    capsys.readouterr()
    assert main(["sync", "utils.ipynb"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "utils.py is not the twin of utils.ipynb (it has no jupytext header); nothing was "
        "written: rename the notebook, or move utils.py away and sync again"
    ]
    assert notebook.read_bytes() == before
    assert (paired / "utils.py").read_text() == MODULE
    for side in ("notebook", "script"):  # choosing a side does not make it a twin
        assert main(["sync", "--prefer", side, "utils.ipynb"]) == 1
    assert notebook.read_bytes() == before
    assert (paired / "utils.py").read_text() == MODULE
    capsys.readouterr()
    assert main(["check", "--pairing", "utils.ipynb"]) == 1
    assert capsys.readouterr().out.startswith(
        "utils.ipynb: utils.py is not the twin of utils.ipynb"
    )


def test_a_renamed_notebook_is_not_rebuilt_from_another_notebooks_twin(paired, capsys):
    other = paired / "other.ipynb"
    nbformat.write(build_notebook(["y = 2"]), other)
    assert main(["sync", "other.ipynb"]) == 0
    other.unlink()  # its twin stays behind
    stale = (paired / "other.py").read_text()
    notebook = _rename(paired, "other")
    before = notebook.read_bytes()
    capsys.readouterr()
    assert main(["sync", "other.ipynb"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "other.py is not the twin of other.ipynb (the notebook was last synced with report.py); "
        "nothing was written: rename the notebook, or move other.py away and sync again"
    ]
    assert notebook.read_bytes() == before
    assert (paired / "other.py").read_text() == stale


def test_a_notebook_renamed_with_its_twin_still_syncs(paired, capsys):
    (paired / "report.ipynb").rename(paired / "renamed.ipynb")
    (paired / "report.py").rename(paired / "renamed.py")
    _change(paired / "renamed.ipynb", _source(1, "x = 5"))
    capsys.readouterr()
    assert main(["sync", "."]) == 0
    assert capsys.readouterr().out.splitlines() == ["wrote renamed.py", "wrote renamed.ipynb"]
    assert "x = 5" in (paired / "renamed.py").read_text()


def test_a_record_from_before_twins_were_named_is_left_as_it_is(paired, capsys):
    _change(paired / "report.ipynb", lambda raw: raw["metadata"]["nbharness"].pop("twin"))
    before = (paired / "report.ipynb").read_bytes()
    capsys.readouterr()
    assert main(["sync", "."]) == 0
    assert capsys.readouterr().out == ""
    assert (paired / "report.ipynb").read_bytes() == before


@pytest.fixture
def save_while_writing(monkeypatch):
    """Save ``notebook`` with ``content`` the moment a temporary file for ``target``
    appears: Jupyter saving while sync writes (the trial timed its save the same way)."""
    real_mkstemp = tempfile.mkstemp

    def arm(target: Path, notebook: Path, content: bytes) -> None:
        def mkstemp(*args, **kwargs):
            made = real_mkstemp(*args, **kwargs)
            if Path(made[1]).name.startswith(f".{target.name}."):
                notebook.write_bytes(content)
            return made

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    return arm


@pytest.mark.parametrize("landing_on", ["notebook", "script"])
def test_a_save_landing_while_sync_writes_is_kept(paired, capsys, save_while_writing, landing_on):
    notebook, script = paired / "report.ipynb", paired / "report.py"
    if landing_on == "notebook":  # the script changed: sync writes the notebook
        _edit_script(paired, "# %%\nx = 1", '# %% tags=["parameters"]\nx = 1')
    else:  # the notebook changed: sync writes the script first
        _change(notebook, _source(1, "x = 3"))
    script_before = script.read_bytes()
    raw = json.loads(notebook.read_text())
    raw["cells"][2]["source"] = "print(x, 'saved by Jupyter')"
    saved = (json.dumps(raw, indent=1) + "\n").encode()
    save_while_writing(
        paired / f"report.{'ipynb' if landing_on == 'notebook' else 'py'}", notebook, saved
    )
    capsys.readouterr()
    assert main(["sync", "report.ipynb"]) == 1
    assert capsys.readouterr().err.splitlines() == ["report.ipynb changed while syncing; run again"]
    assert notebook.read_bytes() == saved
    assert script.read_bytes() == script_before
    assert not list(paired.glob(".*.tmp"))


@pytest.mark.slow
def test_config_git_works_from_an_install_path_with_a_space(tmp_path, monkeypatch):
    launcher_dir = tmp_path / "my tools" / "bin"
    launcher_dir.mkdir(parents=True)
    launcher = launcher_dir / "nbharness"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nbharness.cli "$@"\n')
    launcher.chmod(0o755)
    monkeypatch.setenv("PATH", f"{launcher_dir}{os.pathsep}{os.environ['PATH']}")
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    with _config_git_repo(project) as repo:
        _change(project / "nb.ipynb", _source(1, "b = 20"))
        assert "+b = 20" in repo.git.diff()  # textconv ran: the diff shows the cell's text
        _commit(repo, "theirs: b")
        repo.git.checkout("main")
        _change(project / "nb.ipynb", _source(0, "a = 10"))
        _commit(repo, "ours: a")
        repo.git.merge("theirs", "--no-edit")
    merged = nbformat.read(project / "nb.ipynb", as_version=4)
    assert [cell.source for cell in merged.cells][:2] == ["a = 10", "b = 20"]


def _display_name(name: str):
    def edit(raw):
        raw["metadata"]["kernelspec"]["display_name"] = name

    return edit


def test_a_header_changed_on_both_sides_conflicts_without_becoming_a_cell(merge_repo, tmp_path):
    notebook = tmp_path / "nb.ipynb"
    _change(notebook, _display_name("Theirs"))
    _commit(merge_repo, "theirs")
    merge_repo.git.checkout("main")
    for edit in (_display_name("Ours"), _source(0, "a = 10")):
        _change(notebook, edit)
    _commit(merge_repo, "ours")
    with pytest.raises(git.GitCommandError) as raised:
        merge_repo.git.merge("theirs", "--no-edit")
    assert (
        "nb.ipynb: notebook metadata 'kernelspec.display_name' changed differently on both "
        "sides; kept ours, edit it by hand"
    ) in raised.value.stderr
    merged = nbformat.read(notebook, as_version=4)
    assert [cell.source for cell in merged.cells] == ["a = 10", "b = 2", "print(a + b)", "# Notes"]
    assert merged.metadata["kernelspec"]["display_name"] == "Ours"


@pytest.fixture
def exporting(tmp_path, monkeypatch):
    """A project whose notebook exports ``tools``; the working directory is its root."""
    (tmp_path / "pyproject.toml").write_text("[tool.nbharness]\n")
    nbformat.write(
        build_notebook(["#| default_exp tools", "#| export\nX = 1"]), tmp_path / "a.ipynb"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_export_to_a_module_path_that_is_a_folder_is_one_line(exporting, capsys):
    (exporting / "tools.py").mkdir()
    assert main(["export", "a.ipynb"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "nbharness export: tools.py is a folder, not a module; give the module another name"
    ]
    assert main(["check", "--export", "a.ipynb"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "a.ipynb: tools.py is a folder, not a module; give the module another name"
    ]


def _raw_notebook(**changes) -> dict:
    cell = {"cell_type": "code", "id": "a", "metadata": {}, "source": "x = 1"}
    cell.update(outputs=[], execution_count=None)
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell], **changes}


ODD_NOTEBOOKS = {
    "cells_dict": _raw_notebook(cells={"a": 1}),
    "cells_of_text": _raw_notebook(cells=["x = 1"]),
    "source_int": _raw_notebook(cells=[{**_raw_notebook()["cells"][0], "source": 5}]),
    "metadata_null": _raw_notebook(metadata=None),
    "cell_metadata_null": _raw_notebook(cells=[{**_raw_notebook()["cells"][0], "metadata": None}]),
    "outputs_dict": _raw_notebook(cells=[{**_raw_notebook()["cells"][0], "outputs": {"a": 1}}]),
}


#: The order check reads only the cells: null notebook metadata does not concern it.
@pytest.mark.parametrize("checks", [[], ["--order"]], ids=["all-checks", "order-only"])
def test_check_reports_each_odd_notebook_in_one_line_and_goes_on(
    tmp_path, monkeypatch, capsys, checks
):
    (tmp_path / "pyproject.toml").write_text("[tool.nbharness]\n")
    for name, raw in ODD_NOTEBOOKS.items():
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(raw))
    out_of_order = [{"source": "a = 1", "count": 2}, {"source": "b = 2", "count": 1}]
    nbformat.write(build_notebook(out_of_order), tmp_path / "z_valid.ipynb")
    monkeypatch.chdir(tmp_path)
    assert main(["check", *checks, "."]) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    odd = [name for name in ODD_NOTEBOOKS if checks == [] or name != "metadata_null"]
    assert sorted(line.split(":")[0] for line in err) == sorted(f"{name}.ipynb" for name in odd)
    assert all(": not a valid notebook: " in line for line in err), err
    assert captured.out.startswith("z_valid.ipynb: ")


def _hide_output(index: int):
    def edit(raw):
        raw["cells"][index]["metadata"].update(collapsed=True, scrolled=False)

    return edit


def test_a_merge_keeps_their_metadata_the_script_does_not_show(merge_repo, tmp_path):
    notebook = tmp_path / "nb.ipynb"
    for edit in (_hide_output(2), _source(1, "b = 20"), _hide_output(1)):
        _change(notebook, edit)
    _commit(merge_repo, "theirs: collapse an output, edit b")
    merge_repo.git.checkout("main")
    _change(notebook, _source(0, "a = 10"))
    _commit(merge_repo, "ours: a")
    merge_repo.git.merge("theirs", "--no-edit")
    merged = nbformat.read(notebook, as_version=4)
    assert [cell.source for cell in merged.cells][:3] == ["a = 10", "b = 20", "print(a + b)"]
    for index in (1, 2):
        assert merged.cells[index].metadata["collapsed"] is True
        assert merged.cells[index].metadata["scrolled"] is False


def _synced(record: str):
    def edit(raw):
        raw["metadata"].setdefault("nbharness", {})["synced"] = record

    return edit


def test_sync_records_that_differ_on_both_sides_are_dropped_not_a_conflict(merge_repo, tmp_path):
    notebook = tmp_path / "nb.ipynb"
    for edit in (_source(1, "b = 20"), _synced("1" * 64), _skip("theirs")):
        _change(notebook, edit)
    _commit(merge_repo, "theirs: b, synced")
    merge_repo.git.checkout("main")
    for edit in (_source(0, "a = 10"), _synced("2" * 64)):
        _change(notebook, edit)
    _commit(merge_repo, "ours: a, synced")
    merge_repo.git.merge("theirs", "--no-edit")
    merged = nbformat.read(notebook, as_version=4)
    assert merged.metadata["nbharness"] == {"skip": "theirs"}
