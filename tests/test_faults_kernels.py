"""Faults a notebook can cause in the kernels and processes of a run (issue 23): runaway
output, a fork server killed or stopped from a cell, children that escape the kernel's
process group, and limits or folders a kernel cannot use."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from nbharness.execute import Run
from nbharness.execute.local import LocalExecutor

from .helpers import MakeNotebook, assert_all_dead, build_notebook, expect, kernels_exit_at_start

#: Writes the pytest process's peak memory (KB) where the test can read it.
PEAK_MEMORY_CONFTEST = """
import resource

def pytest_sessionfinish(session):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    open("peak-kb.txt", "w").write(str(peak))
"""

DROPPED = re.compile(r"\.\.\. \[nbharness: ([\d.]+) (MB|KB|GB) of output dropped\] \.\.\.")


def run_of(tmp_path: Path, cells: list[str], **options: object) -> Run:
    return Run(tmp_path / "nb.ipynb", build_notebook(cells), tmp_path, 30, **options)  # type: ignore[arg-type]


# Runaway output (trial 2.11).


@pytest.mark.slow
def test_a_cell_printing_forever_keeps_pytest_small_and_says_what_was_dropped(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    pytester.makeconftest(PEAK_MEMORY_CONFTEST)
    make_notebook("loop.ipynb", ['while True: print("x" * 1000)'])
    result = pytester.runpytest_subprocess("--nb", "--nb-timeout", "6", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    report = "\n".join(result.outlines)
    assert len(report) < 3_000_000, "the report holds the cell's head and tail only"
    assert DROPPED.search(report), "the report says that output was dropped"
    # Uncapped, pytest grows by about 260 MB a second (1.5 GB by the timeout); capped, it
    # levels off around 300-450 MB whatever the load (message buffers, the allocator).
    peak_mb = int((pytester.path / "peak-kb.txt").read_text()) / 1000
    assert peak_mb < 900, f"pytest grew to {peak_mb:.0f} MB"


@pytest.mark.slow
def test_one_huge_print_gives_a_bounded_report_that_still_names_the_error(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook("big.ipynb", ['print("x" * 50_000_000); 1/0'])
    result = pytester.runpytest_subprocess("--nb", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    report = "\n".join(result.outlines)
    assert len(report) < 3_000_000
    assert "cell 1 (In [1]) raised ZeroDivisionError" in report
    dropped = DROPPED.search(report)
    assert dropped is not None
    assert dropped[2] == "MB"
    assert 48 <= float(dropped[1]) < 49, "50 MB printed, about 2 MB kept"


def test_a_cell_keeps_the_head_and_tail_of_its_output(tmp_path: Path) -> None:
    run = run_of(tmp_path, ["for i in range(20000): print(i)"], output_limit=1000)
    with LocalExecutor() as executor:
        result = executor.execute(run)
    assert result.error is None
    outputs = result.notebook.cells[0].outputs
    assert {out.output_type for out in outputs} == {"stream"}
    text = "".join(out.text for out in outputs)
    assert text.startswith("0\n1\n2\n")
    assert text.endswith("19998\n19999\n")
    assert DROPPED.search(text)
    assert len(text) < 1100


def test_a_display_updated_after_the_limit_is_updated_where_it_was_kept(tmp_path: Path) -> None:
    cell = (
        "for i in range(2000): print(i)\n"
        "handle = display('first', display_id=True)\n"
        "print('y' * 100)\n"
        "handle.update('second')"
    )
    with LocalExecutor() as executor:
        result = executor.execute(run_of(tmp_path, [cell], output_limit=1000))
    assert result.error is None
    shown = [
        out.data["text/plain"]
        for out in result.notebook.cells[0].outputs
        if out.output_type == "display_data"
    ]
    assert shown == ["'second'"]


# A cell that kills or stops the fork server (trial 2.8 and 2.9).


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGSTOP"])
def test_a_notebook_that_breaks_the_fork_server_does_not_break_the_next_ones(
    pytester: pytest.Pytester, make_notebook: MakeNotebook, signal_name: str
) -> None:
    make_notebook(
        "a_breaks.ipynb", ["import os, signal", f"os.kill(os.getppid(), signal.{signal_name})"]
    )
    for name in ("b", "c", "d"):
        make_notebook(f"{name}.ipynb", ["print('fine')"])
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--nb", "--nb-launcher", "fork", "-p", "no:cacheprovider", "-v"
    )
    took = time.monotonic() - started
    report = result.stdout.str()
    for name in ("b", "c", "d"):
        assert f"{name}.ipynb::{name} PASSED" in report, report
    assert "fork server" in report, "the report blames the notebook"
    assert signal_name in report
    for noise in ("ForkServerError", "BrokenPipeError", "TimeoutExpired", "Traceback"):
        assert noise not in report
    assert took < 30, f"the run took {took:.0f} s"


# Processes that leave the kernel's process group (trial 2.3 and 2.2).

#: A cell that starts children out of the kernel's process group, and records their pids
#: and its own: one in a new session, one double-forked daemon.
ESCAPING_CHILDREN = """
import os, subprocess, time
session = subprocess.Popen(["sleep", "300"], start_new_session=True)
# A child that drops the environment carries no kernel tag: only its reaper can end it.
untagged = subprocess.Popen(["sleep", "302"], start_new_session=True, env={})
first = os.fork()
if first == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "301"])
    os._exit(0)
os.waitpid(first, 0)
time.sleep(0.2)
daemon = int(subprocess.check_output(["pgrep", "-f", "^sleep 301$"]).split()[-1])
open("pids.txt", "w").write(f"{os.getpid()} {session.pid} {daemon} {untagged.pid}")
"""


def read_pids(folder: Path, grace: float = 60) -> list[int]:
    """The pids a notebook wrote to pids.txt, once it has."""
    path = folder / "pids.txt"
    deadline = time.monotonic() + grace
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    return [int(pid) for pid in path.read_text().split()]


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("launcher", ["fork", "process"])
def test_children_in_a_new_session_end_with_the_run(
    pytester: pytest.Pytester, make_notebook: MakeNotebook, launcher: str
) -> None:
    make_notebook("escapes.ipynb", [ESCAPING_CHILDREN])
    result = pytester.runpytest("--nb", "--nb-launcher", launcher, "-p", "no:cacheprovider")
    pids = read_pids(pytester.path, grace=0)
    try:
        result.assert_outcomes(passed=1)
        assert_all_dead(pids)
    finally:
        kill_pids(pids)


def test_a_forked_kernels_escaped_children_are_gone_when_its_run_returns(tmp_path: Path) -> None:
    # pytest does not search /proc for them: it waits for the fork server's word that it
    # reaped the kernel, which the fork server gives once it has killed them.
    with LocalExecutor() as executor:
        result = executor.execute(run_of(tmp_path, [ESCAPING_CHILDREN], launcher="fork"))
        pids = read_pids(tmp_path, grace=0)
        try:
            assert result.error is None
            # The kernel, its child in a new session and its double-forked daemon carry
            # the kernel's tag; the child that dropped its environment ends with the fork
            # server (test_children_in_a_new_session_end_with_the_run).
            kernel_and_tagged = pids[:3]
            alive = [pid for pid in kernel_and_tagged if running(pid)]
            assert not alive, f"still running after the run returned: {alive}"
        finally:
            kill_pids(pids)


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not: it has ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["fork", "process"])
def test_a_killed_pytest_process_group_leaves_no_kernel_or_child_behind(
    pytester: pytest.Pytester, make_notebook: MakeNotebook, launcher: str
) -> None:
    sockets = (
        "import json, os, ipykernel.connect as c\n"
        "folder = os.path.dirname(json.load(open(c.get_connection_file()))['ip'])\n"
        "open('sockets.txt', 'w').write(folder)"
    )
    make_notebook("hangs.ipynb", [sockets, ESCAPING_CHILDREN, "import time\ntime.sleep(300)"])
    session = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nb",
            "--nb-launcher",
            launcher,
            "-p",
            "no:cacheprovider",
        ],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pids: list[int] = []
    try:
        pids = read_pids(pytester.path)
        forked = psutil.Process(pids[0]).children(recursive=True)
        os.killpg(session.pid, signal.SIGKILL)  # what a cancelled CI job or the OOM killer does
        session.wait()
        assert_all_dead([*pids, *(p.pid for p in forked)], grace=5)
        folder = Path((pytester.path / "sockets.txt").read_text())
        deadline = time.monotonic() + 5
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not folder.exists(), "the kernel's socket folder outlived it"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(session.pid, signal.SIGKILL)
        session.wait()
        kill_pids(pids)


# Limits and folders a kernel cannot use (trial 3.13 and 3.15).


@pytest.mark.parametrize("flag", ["--nb-timeout", "--nb-startup-timeout"])
def test_a_limit_too_long_for_a_clock_still_runs(
    pytester: pytest.Pytester, make_notebook: MakeNotebook, flag: str
) -> None:
    # An infinite limit is refused with the settings (test_config.py); a finite one past
    # what the clocks below can add to must still work.
    make_notebook("ok.ipynb", ["print('fine')"])
    result = pytester.runpytest("--nb", flag, "1e300", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "OverflowError" not in result.stdout.str()


def test_a_missing_working_folder_is_named(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook("ok.ipynb", ["print('fine')"])
    missing = pytester.path / "nowhere"
    result = pytester.runpytest("--nb", "--nb-cwd", str(missing), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [f"kernel 'python3' could not start: its working folder {missing} does not exist*"],
    )


@pytest.mark.parametrize("launcher", ["fork", "process"])
def test_a_kernel_that_dies_at_start_says_what_it_printed(
    pytester: pytest.Pytester,
    make_notebook: MakeNotebook,
    monkeypatch: pytest.MonkeyPatch,
    launcher: str,
) -> None:
    """The kernel's own last words name the cause, not "died before replying"."""
    kernels_exit_at_start(pytester.path / "ipython")
    monkeypatch.setenv("IPYTHONDIR", str(pytester.path / "ipython"))
    make_notebook("ok.ipynb", ["print('fine')"])
    result = pytester.runpytest("--nb", "--nb-launcher", launcher, "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        ["*kernel 'python3' died during start-up: no licence server at lic.example:27000"],
    )


def test_a_missing_kernel_says_where_its_name_came_from(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook("ok.ipynb", ["print('fine')"])
    result = pytester.runpytest("--nb", "--nb-kernel", "nope", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["kernel 'nope' from --nb-kernel is not installed (installed: *"])


# Third-party notebooks (issue 23).


def test_a_syntax_error_headline_does_not_name_ipythons_temporary_file(
    pytester: pytest.Pytester, make_notebook: MakeNotebook
) -> None:
    make_notebook("syntax.ipynb", ["x = 1", "x = 1 +"])
    result = pytester.runpytest("--nb", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["cell 2 (In [2]) raised SyntaxError: invalid syntax"])
    assert not re.search(r"\d+\.py, line", result.stdout.str())


@pytest.mark.slow
def test_a_module_list_others_could_have_written_is_not_imported(
    pytester: pytest.Pytester, make_notebook: MakeNotebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fork server imports every module its cached list names (trial 4.8): a list that
    # another user could have written is probed again instead of trusted.
    monkeypatch.setenv("XDG_CACHE_HOME", str(pytester.path / "cache"))
    planted = pytester.path / "planted"
    planted.mkdir()
    (planted / "nbh_planted.py").write_text("open('IMPORTED', 'w').close()\n")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(planted), os.environ.get("PYTHONPATH", "")])
    )
    make_notebook("ok.ipynb", ["1"])
    args = ("--nb", "--nb-launcher", "fork", "-p", "no:cacheprovider")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    (listing,) = (pytester.path / "cache" / "nbharness").glob("kernel-modules-*.txt")
    listing.write_text(listing.read_text() + "\nnbh_planted")
    listing.chmod(0o666)
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    assert not (pytester.path / "IMPORTED").exists()
