"""`papermill --engine nbharness`: the real papermill CLI on nbharness's executor."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import nbformat

from .helpers import assert_all_dead, build_notebook, record_pids_cell

PAPERMILL = str(Path(sysconfig.get_path("scripts")) / "papermill")
PARAMETERS = {"source": "alpha = 1.0", "tags": ["parameters"]}


def papermill(
    tmp_path: Path, cells: list, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(build_notebook(cells), source)
    command = [PAPERMILL, "--engine", "nbharness", str(source), str(output), *args]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    return done, output


def test_parameters_are_injected_and_the_notebook_runs(tmp_path):
    done, output = papermill(
        tmp_path, [PARAMETERS, "print(f'alpha is {alpha}')"], "-p", "alpha", "0.1"
    )
    assert done.returncode == 0, done.stderr
    executed = nbformat.read(output, as_version=4)
    assert executed.cells[1].metadata.tags == ["injected-parameters"]
    assert executed.cells[2].outputs[0]["text"] == "alpha is 0.1\n"
    assert executed.metadata.papermill["parameters"] == {"alpha": 0.1}
    assert executed.cells[2].metadata.papermill["status"] == "completed"


def test_log_output_and_cell_status_follow_papermill(tmp_path):
    cells = [{"markdown": "# Title"}, PARAMETERS, "print(f'logged {alpha}')", "alpha * 2"]
    done, output = papermill(tmp_path, cells, "--log-output", "-p", "alpha", "21")
    assert done.returncode == 0, done.stderr
    assert "logged 21" in done.stderr
    assert "42" in done.stderr
    executed = nbformat.read(output, as_version=4)
    assert {cell.metadata.papermill["status"] for cell in executed.cells} == {"completed"}


def test_a_missing_kernel_names_papermills_own_option(tmp_path):
    source = tmp_path / "in.ipynb"
    nb = build_notebook(["x = 1"])
    nb.metadata.kernelspec = {"name": "julia-1.9", "display_name": "Julia", "language": "julia"}
    nbformat.write(nb, source)
    done = subprocess.run(
        [PAPERMILL, "--engine", "nbharness", str(source), str(tmp_path / "out.ipynb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "kernel 'julia-1.9' from the notebook's kernelspec is not installed" in done.stderr
    assert "run with papermill -k NAME to override it" in done.stderr


def test_a_failing_cell_fails_papermill_with_its_error(tmp_path):
    done, output = papermill(tmp_path, [PARAMETERS, "1 / (alpha - alpha)", "print('never')"])
    assert done.returncode != 0
    assert "ZeroDivisionError" in done.stderr
    executed = nbformat.read(output, as_version=4)
    assert executed.metadata.papermill["exception"] is True


def test_a_hung_cell_fails_at_the_execution_timeout_and_its_kernel_is_killed(tmp_path):
    cells = [record_pids_cell(), "import time\ntime.sleep(300)"]
    done, _ = papermill(tmp_path, cells, "--execution-timeout", "2")
    assert done.returncode != 0
    assert "did not finish within the cell timeout of 2 s" in done.stderr
    assert_all_dead([int(pid) for pid in (tmp_path / "pids.txt").read_text().split()])


def test_a_dying_kernel_is_reported_by_papermill(tmp_path):
    done, _ = papermill(tmp_path, [record_pids_cell(), "import os\nos._exit(3)"])
    assert done.returncode != 0
    assert "kernel died (exit code 3) while running cell 2" in done.stderr
    assert_all_dead([int(pid) for pid in (tmp_path / "pids.txt").read_text().split()])


def test_kernels_start_from_the_fork_server_as_under_pytest(tmp_path):
    parent = "import os, psutil\nprint(' '.join(psutil.Process(os.getppid()).cmdline()))"
    done, output = papermill(tmp_path, [parent])
    assert done.returncode == 0, done.stderr
    printed = nbformat.read(output, as_version=4).cells[0].outputs[0]["text"]
    assert "forkserver" in printed


def test_stdout_and_stderr_files_get_the_cells_streams(tmp_path):
    cells = ["print('to stdout')", "import sys\nprint('to stderr', file=sys.stderr)"]
    done, _ = papermill(tmp_path, cells, "--stdout-file", "out.txt", "--stderr-file", "err.txt")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.txt").read_text() == "to stdout\n"
    assert (tmp_path / "err.txt").read_text() == "to stderr\n"


def test_the_start_timeout_is_honoured_and_named(tmp_path, monkeypatch):
    spec = tmp_path / "jupyter" / "kernels" / "slow"
    spec.mkdir(parents=True)
    argv = [
        "sh",
        "-c",
        f"sleep 15; exec {sys.executable} -m ipykernel_launcher -f {{connection_file}}",
    ]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "slow", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    started = time.monotonic()
    done, _ = papermill(tmp_path, ["x = 1"], "-k", "slow", "--start-timeout", "2")
    assert done.returncode != 0
    assert time.monotonic() - started < 12
    assert "did not start within 2 s (papermill --start-timeout)" in done.stderr
