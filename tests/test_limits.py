"""Timeouts, dead and unstartable kernels, signals: each ends in one line, leaving no process."""

from __future__ import annotations

import json
import re
import signal
import sys

import pytest

from .helpers import assert_all_dead, expect, record_pids_cell, signalled_session

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")


def test_what_a_cell_printed_before_it_hung_or_died_is_in_the_report(pytester, make_notebook):
    make_notebook(
        "hangs.ipynb", ["import time\nprint('loading the big file', flush=True)\ntime.sleep(60)"]
    )
    # The pause lets the output reach us first: output sent in the very instant of a death
    # can be lost, since the death may be noticed before that output is read.
    dying = "import os, sys, time\nprint('dying now', file=sys.stderr, flush=True)\ntime.sleep(0.5)"
    make_notebook("dies.ipynb", [dying + "\nos._exit(1)"])
    result = pytester.runpytest("--nb", "--nb-timeout", "2")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*Captured stdout call*", "loading the big file"])
    result.stdout.fnmatch_lines(["*Captured stderr call*", "dying now"])


def test_a_hung_cell_fails_at_the_timeout_and_its_kernel_is_killed(pytester, make_notebook):
    make_notebook("hang.ipynb", [record_pids_cell(), "import time\ntime.sleep(300)"])
    result = pytester.runpytest("--nb", "--nb-timeout", "2")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            "*cell 2 (In [2]) did not finish within the cell timeout of 2 s (--nb-timeout); "
            "the kernel was stopped",
            "    1 | import time",
        ],
    )
    assert_all_dead([int(pid) for pid in (pytester.path / "pids.txt").read_text().split()])


def test_a_dying_kernel_is_reported_without_waiting_for_the_timeout(pytester, make_notebook):
    dying = "import os\nos.write(2, b'fatal: out of luck\\n')\nos._exit(1)"
    make_notebook("dies.ipynb", [record_pids_cell(), dying, "x = 1"])
    result = pytester.runpytest("--nb", "--nb-timeout", "60", "--durations=1")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            "*kernel died (exit code 1) while running cell 2*",
            "Kernel stderr (last lines):",
            "fatal: out of luck",
        ],
    )
    duration = re.search(r"([\d.]+)s call", result.stdout.str())
    assert duration is not None
    assert float(duration.group(1)) < 20
    assert "Captured log" not in result.stdout.str()
    assert_all_dead([int(pid) for pid in (pytester.path / "pids.txt").read_text().split()])


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stop_the_session_and_the_kernel(pytester, make_notebook, signum):
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C: no kernel is left behind."""
    make_notebook("a_hangs.ipynb", [record_pids_cell(), "import time\ntime.sleep(300)"])
    make_notebook("b_never.ipynb", ["open('ran.txt', 'w').write('yes')"])
    pids_file = pytester.path / "pids.txt"
    returncode, output = signalled_session(pytester.path, pids_file, signum)
    assert returncode == pytest.ExitCode.INTERRUPTED
    assert b"KeyboardInterrupt" in output
    assert not (pytester.path / "ran.txt").exists()
    assert_all_dead([int(pid) for pid in pids_file.read_text().split()])


@pytest.mark.slow
def test_a_kernel_that_cannot_start_fails_in_one_line_and_leaves_no_noise(
    pytester, make_notebook, monkeypatch
):
    kernels = pytester.path / "jupyter" / "kernels" / "broken"
    kernels.mkdir(parents=True)
    spec = {
        "argv": ["/bin/false", "{connection_file}"],
        "display_name": "Broken",
        "language": "python",
    }
    (kernels / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(pytester.path / "jupyter"))
    make_notebook("a.ipynb", ["x = 1"], kernelspec={"name": "broken", "display_name": "Broken"})
    result = pytester.runpytest_subprocess("--nb", "--nb-launcher", "process")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*kernel 'broken' *start*"])
    assert "Exception ignored" not in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stdout.str()


def test_each_timeout_failure_names_the_limit_that_fired(pytester, make_notebook):
    make_notebook(
        "own.ipynb",
        [{"source": "import time\ntime.sleep(30)", "metadata": {"nbharness": {"timeout": 1}}}],
    )
    make_notebook("whole.ipynb", ["import time\ntime.sleep(0.8)", "time.sleep(0.8)", "x = 1"])
    result = pytester.runpytest("--nb", "--nb-notebook-timeout", "1.2", "--nb-timeout", "30")
    result.assert_outcomes(failed=2)
    expect(
        result.stdout,
        [
            "*cell 1 (In [1]) did not finish within its own timeout of 1 s "
            "(cell metadata nbharness.timeout)*",
            "*cell 2 (In [2]) did not finish within the notebook timeout of 1.2 s "
            "(--nb-notebook-timeout)*",
        ],
    )


def test_a_kernel_that_does_not_answer_in_time_names_the_startup_limit(
    pytester, make_notebook, monkeypatch
):
    kernels = pytester.path / "jupyter" / "kernels" / "silent"
    kernels.mkdir(parents=True)
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Silent", "language": "python"}
    (kernels / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(pytester.path / "jupyter"))
    make_notebook("a.ipynb", ["x = 1"], kernelspec={"name": "silent", "display_name": "Silent"})
    result = pytester.runpytest_subprocess("--nb", "--nb-startup-timeout", "2")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*kernel 'silent' did not start within 2 s (--nb-startup-timeout)*"])


def test_a_missing_kernel_fails_in_one_line_and_can_be_overridden(pytester, make_notebook):
    julia = {"name": "julia-1.9", "display_name": "Julia 1.9", "language": "julia"}
    make_notebook("other.ipynb", ["x = 1"], kernelspec=julia)
    missing = pytester.runpytest("--nb")
    missing.assert_outcomes(failed=1)
    expect(
        missing.stdout,
        [
            "kernel 'julia-1.9' from the notebook's kernelspec is not installed "
            "(installed: *python3*); run with --nb-kernel NAME to override it"
        ],
    )
    overridden = pytester.runpytest("--nb", "--nb-kernel", "python3")
    overridden.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (
            ["--nb-timeout", "soon"],
            "",
            "--nb-timeout: expected a positive number of seconds, got 'soon'",
        ),
        (
            [],
            "nb_timeout = -3",
            "ini option nb_timeout: expected a positive number of seconds, got '-3'",
        ),
    ],
)
def test_a_bad_timeout_is_a_usage_error_naming_its_source(pytester, args, ini, message):
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("--nb", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expect(result.stderr, [f"*{message}*"])
