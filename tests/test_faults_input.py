"""Bad input and notebook I/O: one line naming the file, nothing the user wrote lost."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from nbharness.cli import main
from nbharness.notebook.io import NotWritten, read_notebook, write_atomically

from .helpers import build_notebook, expect

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")


def v44_with_ids() -> dict[str, object]:
    """nbformat 4.4 whose cells carry ids, as some Jupyter versions write them."""
    cell = {"cell_type": "code", "id": "c1", "metadata": {}, "outputs": []}
    cell.update(execution_count=None, source="x = 41 + 1\nassert x == 42")
    return {"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [cell]}


def test_a_4_4_notebook_with_cell_ids_runs_syncs_and_checks(pytester, write_raw, monkeypatch):
    write_raw("ids.ipynb", v44_with_ids())
    result = pytester.runpytest("--nb", "-W", "error::nbharness.errors.NotebookWarning")
    result.assert_outcomes(passed=1)
    monkeypatch.chdir(pytester.path)
    pytester.makepyprojecttoml('[tool.nbharness]\npairing = "py:percent"\n')
    assert main(["sync", "ids.ipynb"]) == 0
    assert main(["check", "--pairing", "ids.ipynb"]) == 0


def test_a_key_the_schema_does_not_know_is_a_warning_not_a_refusal(tmp_path):
    raw = v44_with_ids()
    raw["nbformat_minor"] = 5
    raw["cells"][0]["collapsed"] = True  # type: ignore[index]
    path = tmp_path / "drift.ipynb"
    path.write_text(json.dumps(raw))
    nb, warning = read_notebook(path)
    assert nb.cells[0].source.startswith("x = 41")
    assert warning is not None
    assert warning.startswith("schema drift at cell 1")


def test_deeply_nested_json_fails_alone_in_one_line(pytester, make_notebook, monkeypatch, capsys):
    (pytester.path / "deep.ipynb").write_text("[" * 100_000)
    make_notebook("good.ipynb", ["x = 1"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1, failed=1)
    expect(result.stdout, ["*deep.ipynb: not a valid notebook: bad JSON: nested too deeply*"])
    assert "RecursionError" not in result.stdout.str()
    monkeypatch.chdir(pytester.path)
    for command in (["export", "deep.ipynb"], ["check", "deep.ipynb"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert "deep.ipynb" in err
        assert len(err.strip().splitlines()) == 1, err


def test_an_output_dir_that_would_overwrite_the_sources_is_refused(pytester, make_notebook):
    source = make_notebook("a.ipynb", ["x = 1"])
    before = source.read_bytes()
    result = pytester.runpytest("--nb", "--nb-output-dir", ".")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --nb-output-dir *: the executed copy would overwrite the notebook *a.ipynb; *"]
    )
    assert source.read_bytes() == before


def test_an_executed_copy_in_the_tree_is_not_collected_and_says_so(pytester, make_notebook):
    make_notebook("a.ipynb", ["x = 1"])
    pytester.runpytest("--nb", "--nb-output-dir", "out").assert_outcomes(passed=1)
    (pytester.path / "out" / "a.ipynb").rename(pytester.path / "copied.ipynb")
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1, warnings=1)
    expect(result.stdout, ["*copied.ipynb: not collected: it is an executed copy of a.ipynb::a*"])


def test_an_unwritable_output_dir_warns_in_one_line_and_the_notebook_passes(
    pytester, make_notebook
):
    make_notebook("a.ipynb", ["x = 1"])
    result = pytester.runpytest("--nb", "--nb-output-dir", "/proc/nbharness-nowhere")
    result.assert_outcomes(passed=1, warnings=1)
    expect(result.stdout, ["*a.ipynb: executed copy not saved: /proc/nbharness-nowhere/a.ipynb*"])
    assert "Traceback" not in result.stdout.str()


def test_a_read_only_notebook_is_not_rewritten(pytester, make_notebook):
    path = make_notebook("ro.ipynb", ["print('fresh')"])
    before = path.read_bytes()
    path.chmod(0o444)
    result = pytester.runpytest("--nb", "--nb-update-outputs")
    result.assert_outcomes(passed=1, warnings=1)
    expect(result.stdout, ["*outputs not updated: ro.ipynb: not written: the file is read-only*"])
    assert path.read_bytes() == before
    with pytest.raises(NotWritten):
        write_atomically(path, "{}")


def test_writes_go_through_a_symlink_to_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "s.ipynb"
    target.write_text("old")
    link = tmp_path / "link.ipynb"
    link.symlink_to(os.path.join("real", "s.ipynb"))
    write_atomically(link, "new")
    assert link.is_symlink()
    assert target.read_text() == "new"
    assert not [p for p in (tmp_path / "real").iterdir() if p.name != "s.ipynb"]


def test_odd_parameter_ids_stay_on_one_line_and_fit_a_file_name(pytester, make_notebook):
    make_notebook("p.ipynb", [{"source": "x = 0", "tags": ["parameters"]}, "assert x"])
    long_id = "z" * 300
    pytester.makepyprojecttoml(
        "[tool.nbharness.parameters]\n"
        f'"p.ipynb" = [{{id = "x\\ny", x = 1}}, {{id = "{long_id}", x = 2}}]\n'
    )
    result = pytester.runpytest("--nb", "--nb-output-dir", "out", "-v")
    result.assert_outcomes(passed=2)
    expect(result.stdout, ["p.ipynb::p[x\\ny] PASSED*"])
    written = sorted(path.name for path in (pytester.path / "out").iterdir())
    assert len(written) == 2
    assert all(len(name.encode()) < 255 for name in written)


@pytest.fixture
def paired(tmp_path, monkeypatch):
    """A project pairing notebooks with py:percent scripts, synced once."""
    (tmp_path / "pyproject.toml").write_text('[tool.nbharness]\npairing = "py:percent"\n')
    (tmp_path / "real").mkdir()
    nbformat.write(build_notebook(["x = 1"]), tmp_path / "real" / "s.ipynb")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sync_writes_a_symlinked_notebook_through_the_link(paired):
    link = paired / "link.ipynb"
    link.symlink_to(os.path.join("real", "s.ipynb"))
    assert main(["sync", "link.ipynb"]) == 0
    script = paired / "link.py"
    script.write_text(script.read_text().replace("x = 1", "x = 2"))
    assert main(["sync", "link.ipynb"]) == 0
    assert link.is_symlink()
    assert "x = 2" in (paired / "real" / "s.ipynb").read_text()


def test_sync_refuses_a_read_only_notebook_in_one_line(paired, capsys):
    notebook = paired / "real" / "s.ipynb"
    assert main(["sync", str(notebook)]) == 0
    script = paired / "real" / "s.py"
    script.write_text(script.read_text().replace("x = 1", "x = 2"))
    notebook.chmod(0o444)
    before = notebook.read_bytes()
    capsys.readouterr()
    assert main(["sync", str(notebook)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["real/s.ipynb: not written: the file is read-only"]
    assert notebook.read_bytes() == before
