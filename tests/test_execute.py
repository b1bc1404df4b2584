"""The executor interface and its local backend, without pytest in the way."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import psutil
import pytest

from nbharness.errors import CellError, KernelNotFound, NbHarnessError
from nbharness.execute import ExecutorSettings, Run, make_executor
from nbharness.execute.local import LocalExecutor, LocalKernel
from nbharness.execute.session import KernelSession

from .helpers import build_notebook


def run_of(tmp_path: Path, cells: list[str | dict[str, object]], timeout: float = 30) -> Run:
    return Run(tmp_path / "nb.ipynb", build_notebook(cells), tmp_path, timeout)


def test_unknown_executor_names_the_known_ones():
    with pytest.raises(NbHarnessError, match=r"unknown executor 'nope' \(known: .*local"):
        make_executor("nope")


def test_local_is_the_builtin_executor():
    assert isinstance(make_executor("local"), LocalExecutor)


def test_the_registry_builds_a_remote_executor_as_configured():
    from nbharness.execute.remote import RemoteExecutor
    from nbharness.jupyter_api.rest import Server

    server = Server("http://127.0.0.1:9/user/alice/", "secret")
    settings = ExecutorSettings(server=server, remote_cwd="work", max_kernels=2)
    executor = make_executor("remote", settings)
    assert isinstance(executor, RemoteExecutor)
    assert (executor.server, executor.remote_cwd) == (server, "work")
    assert executor.slots is not None
    assert executor.slots.count == 2
    with executor:  # nothing started: closing asks the server nothing
        pass


PLUGIN_EXECUTOR = """
from nbharness.execute.local import LocalExecutor, LocalKernel
from nbharness.execute.session import KernelSession

class Executor(LocalExecutor):
    def __init__(self, settings):
        super().__init__()
        self.settings = settings
"""


def test_a_third_party_executor_is_found_by_entry_point_and_given_the_settings(
    tmp_path, monkeypatch
):
    (tmp_path / "thirdparty_executor.py").write_text(PLUGIN_EXECUTOR)
    dist = tmp_path / "thirdparty_executor-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: thirdparty-executor\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[nbharness.executors]\nthirdparty = thirdparty_executor:Executor\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = ExecutorSettings(remote_cwd="anywhere")
    with make_executor("thirdparty", settings) as executor:
        assert getattr(executor, "settings", None) is settings
        result = executor.execute(run_of(tmp_path, ["print('via plugin')"]))
    assert result.notebook.cells[0].outputs[0]["text"] == "via plugin\n"
    with pytest.raises(NbHarnessError, match=r"known: gateway, local, remote, thirdparty\)"):
        make_executor("nope")


def test_executed_notebook_holds_only_this_runs_outputs(tmp_path):
    run = run_of(tmp_path, ["print('fresh')", "x = 1"])
    run.notebook.cells[1].outputs = [{"output_type": "stream", "name": "stdout", "text": "stale"}]
    run.notebook.cells[1].execution_count = 41
    with LocalExecutor() as executor:
        result = executor.execute(run)
    assert result.error is None
    assert result.notebook.cells[0].outputs[0]["text"] == "fresh\n"
    assert result.notebook.cells[1].outputs == []
    assert result.notebook.cells[1].execution_count == 2
    assert run.notebook.cells[1].execution_count == 41, "the input notebook is left alone"


def test_a_clean_exit_is_reported_as_exited_early(tmp_path):
    with LocalExecutor() as executor:
        result = executor.execute(run_of(tmp_path, ["import sys\nsys.exit(0)", "1/0"]))
    assert result.error is None
    assert result.exited_early
    assert result.notebook.cells[1].execution_count is None


def test_an_error_carries_the_cell_and_its_traceback(tmp_path):
    with LocalExecutor() as executor:
        result = executor.execute(run_of(tmp_path, ["x = 1", "x.missing"]))
    assert isinstance(result.error, CellError)
    assert (result.error.index, result.error.execution_count) == (1, 2)
    assert result.error.ename == "AttributeError"
    assert result.error.traceback


def test_cells_tagged_to_raise_that_did_not_are_listed(tmp_path):
    cells: list[str | dict[str, object]] = [
        {"source": "1/0", "tags": ["raises-exception"]},
        {"source": "y = 2", "tags": ["raises-exception"]},
    ]
    with LocalExecutor() as executor:
        result = executor.execute(run_of(tmp_path, cells))
    assert result.error is None
    assert result.unraised == [1]


def test_a_kernel_session_starts_nothing_until_it_executes(tmp_path):
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    session = KernelSession(run_of(tmp_path, ["print('now')"]), LocalKernel())
    assert {p.pid for p in me.children(recursive=True)} == before
    assert session.client is None
    with session:
        result = session.execute()
        assert {p.pid for p in me.children(recursive=True)} > before, "the kernel is up"
    assert result.notebook.cells[0].outputs[0]["text"] == "now\n"
    assert {p.pid for p in me.children(recursive=True)} == before


def test_a_kernel_installed_during_the_session_is_found(tmp_path, monkeypatch):
    """Installed kernels are looked up once a session; a missing one is looked for again."""
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))
    run = dataclasses.replace(run_of(tmp_path, ["print('late')"]), kernel="nbh-late")
    with LocalExecutor() as executor:
        assert isinstance(executor.execute(run).error, KernelNotFound)
        spec = tmp_path / "share" / "kernels" / "nbh-late"
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": "late", "language": "python"}
        (spec / "kernel.json").write_text(json.dumps(kernel))
        assert executor.execute(run).error is None
        assert executor.execute(run).error is None
