"""`pytest --nb` end to end: real pytest sessions (pytester) on real kernels."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from .helpers import assert_all_dead, expect, record_pids_cell

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")


def test_notebooks_are_not_collected_without_the_flag(pytester, make_notebook):
    make_notebook("a.ipynb", ["1/0"])
    result = pytester.runpytest()
    result.assert_outcomes()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


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


def test_naming_a_notebook_without_the_flag_says_which_flag(pytester, make_notebook):
    make_notebook("a.ipynb", ["x = 1"])
    result = pytester.runpytest("a.ipynb")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*a.ipynb is a notebook: run pytest --nb to test notebooks*"])


def test_a_clean_notebook_passes_and_runs_in_its_own_folder(pytester, make_notebook):
    folder = pytester.path / "analysis" / "with space"
    make_notebook(
        "analysis/with space/ünïcode.ipynb",
        [
            {"markdown": "# A title"},
            "import os\ncwd = os.getcwd()",
            f"assert cwd == {str(folder)!r}, cwd\nprint('π ≈ 3.14')",
        ],
    )
    result = pytester.runpytest("--nb", "-v")
    result.assert_outcomes(passed=1)
    expect(result.stdout, ["*analysis/with space/ünïcode.ipynb::ünïcode PASSED*"])


def test_checkpoint_copies_are_never_collected(pytester, make_notebook):
    make_notebook("nb.ipynb", ["x = 1"])
    make_notebook(".ipynb_checkpoints/nb-checkpoint.ipynb", ["1/0"])
    pytester.makeini("[pytest]\nnorecursedirs = build\n")
    result = pytester.runpytest("--nb", "-v")
    result.assert_outcomes(passed=1)


def test_a_failing_cell_is_reported_with_its_number_source_and_clean_traceback(
    pytester, make_notebook
):
    make_notebook(
        "broken.ipynb",
        [
            {"markdown": "Setup"},
            "def ratio(a, b):\n    return a / b",
            "x = 1\ny = ratio(x, 0)\nprint('unreached')",
            "print('never run')",
        ],
    )
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            "*cell 3 (In [2]) raised ZeroDivisionError: division by zero",
            "Source of cell 3 (In [2]):",
            "    1 | x = 1",
            "--> 2 | y = ratio(x, 0)",
            "    3 | print('unreached')",
            "Traceback (kernel frames trimmed):",
            "*Cell In[2], line 2*",
            "*Cell In[1], line 2, in ratio(a, b)*",
            "ZeroDivisionError: division by zero",
            "*short test summary info*",
            "FAILED broken.ipynb::broken - cell 3 (In [2]) raised ZeroDivisionError*",
        ],
    )
    assert "\x1b[" not in result.stdout.str()
    assert "nbharness/" not in result.stdout.str()


def test_kernel_frames_are_trimmed_unless_fulltrace(pytester, make_notebook):
    make_notebook("asks.ipynb", ["name = input('name?')"])
    trimmed = pytester.runpytest("--nb")
    expect(
        trimmed.stdout,
        ["*cell 1 (In [1]) asked for input (input() or getpass), which a test run cannot answer*"],
    )
    assert "kernelbase.py" not in trimmed.stdout.str()
    full = pytester.runpytest("--nb", "--fulltrace")
    expect(full.stdout, ["Traceback:", "*ipykernel*kernelbase.py*"])


@pytest.mark.parametrize(
    ("tb", "present", "absent"),
    [
        ("short", ["--> 1 | 1/0"], ["Traceback"]),
        ("line", ["*broken.ipynb: cell 1 (In [1]) raised ZeroDivisionError: division by zero"], []),
        ("no", [], ["raised ZeroDivisionError: division by zero\n"]),
    ],
)
def test_tb_styles_shape_the_report(pytester, make_notebook, tb, present, absent):
    make_notebook("broken.ipynb", ["1/0"])
    result = pytester.runpytest("--nb", f"--tb={tb}", "-rN")
    result.assert_outcomes(failed=1)
    expect(result.stdout, present)
    for text in absent:
        assert text not in result.stdout.str()


def test_the_failure_headline_is_the_notebooks_path(pytester, make_notebook):
    make_notebook("one/notebook2.ipynb", ["1/0"])
    make_notebook("two/notebook2.ipynb", ["1/0"])
    make_notebook("v4.5.ipynb", ["1/0"])
    result = pytester.runpytest("--nb", "-v")
    expect(
        result.stdout,
        [
            "one/notebook2.ipynb::notebook2 FAILED*",
            "two/notebook2.ipynb::notebook2 FAILED*",
            "v4.5.ipynb::v4.5 FAILED*",
            "*_ one/notebook2.ipynb _*",
            "*_ two/notebook2.ipynb _*",
            "*_ v4.5.ipynb _*",
        ],
    )


def test_an_error_without_error_output_still_names_the_exception(pytester, make_notebook):
    make_notebook("magic.ipynb", ["x = 1", "%undefined_line_magic"])
    result = pytester.runpytest("--nb")
    expect(result.stdout, ["*cell 2 (In [2]) raised UsageError: Line magic function *not found*"])


def test_a_syntax_error_points_at_its_line(pytester, make_notebook):
    make_notebook("syntax.ipynb", ["x = 1\ny = (\n"])
    result = pytester.runpytest("--nb")
    expect(result.stdout, ["*cell 1 (In [1]) raised SyntaxError*", "--> 2 | y = ("])


def test_failing_cell_output_is_shown_as_captured_sections(pytester, make_notebook):
    make_notebook(
        "noisy.ipynb", ["import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n1/0"]
    )
    result = pytester.runpytest("--nb")
    expect(
        result.stdout,
        ["*Captured stdout call*", "to stdout", "*Captured stderr call*", "to stderr"],
    )


@pytest.mark.parametrize("exit_call", ["sys.exit(0)", "sys.exit()", "raise SystemExit"])
def test_a_clean_system_exit_ends_the_notebook_as_a_pass(pytester, make_notebook, exit_call):
    make_notebook("early.ipynb", [f"import sys\n{exit_call}", "raise RuntimeError('must not run')"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1)


def test_a_system_exit_with_an_error_code_fails(pytester, make_notebook):
    make_notebook("exit3.ipynb", ["import sys\nsys.exit(3)"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*cell 1 (In [1]) called sys.exit(3)*"])


def test_tags_skip_cells_and_allow_expected_errors(pytester, make_notebook):
    make_notebook(
        "tags.ipynb",
        [
            {"source": "raise RuntimeError('never run')", "tags": ["skip-execution"]},
            {"source": "1/0", "tags": ["raises-exception"]},
            "print('the notebook goes on')",
        ],
    )
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1)


def test_a_cell_tagged_to_raise_that_does_not_warns_or_fails_when_strict(pytester, make_notebook):
    make_notebook("calm.ipynb", ["x = 1", {"source": "y = 2", "tags": ["raises-exception"]}])
    lenient = pytester.runpytest("--nb")
    lenient.assert_outcomes(passed=1, warnings=1)
    expect(
        lenient.stdout,
        [
            "*NotebookWarning: calm.ipynb: cell 2 (In [2]) is tagged 'raises-exception' "
            "but raised nothing"
        ],
    )
    strict = pytester.runpytest("--nb", "--nb-strict-raises")
    strict.assert_outcomes(failed=1)
    expect(strict.stdout, ["*cell 2 (In [2]) is tagged 'raises-exception' but raised nothing"])


def test_notebook_metadata_can_skip_a_notebook_with_a_reason(pytester, make_notebook):
    make_notebook("gpu.ipynb", ["1/0"], nbharness={"skip": "needs a GPU"})
    result = pytester.runpytest("--nb", "-rs")
    result.assert_outcomes(skipped=1)
    expect(result.stdout, ["SKIPPED [1] gpu.ipynb: needs a GPU"])


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
    ("content", "reason"),
    [
        ('{"cells": [', "bad JSON: Expecting value*"),
        ([1, 2], "the JSON is not a notebook (no 'nbformat' key)"),
        (
            {"nbformat": 9, "nbformat_minor": 0, "cells": [], "metadata": {}},
            "unsupported nbformat version 9",
        ),
        (
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "cells": [{"cell_type": "code", "metadata": {}, "outputs": []}],
                "metadata": {},
            },
            "schema error at cell 1: 'source' is a required property",
        ),
    ],
    ids=["bad-json", "not-a-notebook", "future-version", "schema-invalid"],
)
def test_an_invalid_file_fails_in_one_line_and_the_others_still_run(
    pytester, make_notebook, write_raw, content, reason
):
    write_raw("bad.ipynb", content)
    make_notebook("good.ipynb", ["x = 1"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1, failed=1)
    expect(result.stdout, [f"bad.ipynb: not a valid notebook: {reason}"])
    assert "Traceback" not in result.stdout.str()


def test_notebooks_nbformat_can_upgrade_or_repair_still_run(pytester, write_raw):
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "input": "x = 41 + 1",
                        "language": "python",
                        "outputs": [],
                    },
                    {"cell_type": "raw", "source": "raw text"},
                    {
                        "cell_type": "code",
                        "input": "assert x == 42",
                        "language": "python",
                        "outputs": [],
                    },
                ]
            }
        ],
    }
    write_raw("v3.ipynb", v3)
    no_ids = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "source": "y = 1",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
            }
        ],
    }
    write_raw("no-ids.ipynb", no_ids)
    result = pytester.runpytest("--nb", "-W", "error")
    result.assert_outcomes(passed=2)


def test_invalid_metadata_is_a_warning_and_the_notebook_runs(pytester, write_raw):
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"language": "python"}},
        "cells": [
            {"cell_type": "code", "id": "a", "source": "x = 1", "metadata": {}, "outputs": []}
        ],
    }
    nb["cells"][0]["execution_count"] = None
    write_raw("odd-metadata.ipynb", nb)
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1, warnings=1)
    expect(
        result.stdout,
        [
            "*NotebookWarning: odd-metadata.ipynb: invalid metadata at metadata.kernelspec "
            "('name' is a required property); ran anyway"
        ],
    )


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


def test_output_dir_keeps_executed_notebooks_mirrored_and_never_collects_them(
    pytester, make_notebook
):
    make_notebook("sub/ok.ipynb", ["print('hello')"])
    make_notebook("sub/broken.ipynb", ["1/0"])
    first = pytester.runpytest("--nb", "--nb-output-dir", "artifacts")
    first.assert_outcomes(passed=1, failed=1)
    ok = nbformat.read(pytester.path / "artifacts/sub/ok.ipynb", as_version=4)
    assert ok.cells[0].outputs[0]["text"] == "hello\n"
    broken = nbformat.read(pytester.path / "artifacts/sub/broken.ipynb", as_version=4)
    assert broken.cells[0].outputs[0]["ename"] == "ZeroDivisionError"
    second = pytester.runpytest("--nb", "--nb-output-dir", "artifacts")
    second.assert_outcomes(passed=1, failed=1)
    without_the_flag = pytester.runpytest("--nb")
    without_the_flag.assert_outcomes(passed=1, failed=1)


def test_ini_options_configure_the_run(pytester, make_notebook):
    make_notebook(
        "slow.ipynb",
        ["import time\ntime.sleep(30)"],
        kernelspec={"name": "nope", "display_name": "Nope"},
    )
    pytester.makeini("[pytest]\nnb_timeout = 1.5\nnb_kernel = python3\nnb_output_dir = out\n")
    result = pytester.runpytest("--nb")
    expect(
        result.stdout,
        [
            "nbharness: kernel=python3, cell timeout=1.5s, executor=local, launcher=*, "
            "output dir=*out",
            "*did not finish within the cell timeout of 1.5 s*",
        ],
    )
    assert (pytester.path / "out" / "slow.ipynb").exists()


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


def test_selection_and_reruns_work_as_for_ordinary_tests(pytester, make_notebook):
    make_notebook("alpha.ipynb", ["x = 1"])
    make_notebook("beta.ipynb", ["1/0"])
    pytester.runpytest("--nb", "-k", "alpha").assert_outcomes(passed=1)
    pytester.runpytest("--nb").assert_outcomes(passed=1, failed=1)
    rerun = pytester.runpytest("--nb", "--lf")
    rerun.assert_outcomes(failed=1)
    first_failure = pytester.runpytest("--nb", "-x")
    first_failure.assert_outcomes(passed=1, failed=1)


def test_junit_xml_carries_the_one_line_summary(pytester, make_notebook):
    make_notebook("broken.ipynb", ["1/0"])
    pytester.runpytest("--nb", "--junitxml=report.xml")
    xml = (pytester.path / "report.xml").read_text()
    assert 'message="cell 1 (In [1]) raised ZeroDivisionError: division by zero"' in xml


def test_xdist_spreads_notebooks_over_workers(pytester, make_notebook):
    for n in range(3):
        make_notebook(f"nb{n}.ipynb", [f"x = {n}"])
    make_notebook("broken.ipynb", ["1/0"])
    result = pytester.runpytest_subprocess("--nb", "-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    expect(result.stdout, ["*cell 1 (In [1]) raised ZeroDivisionError*"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stop_the_session_and_the_kernel(pytester, make_notebook, signum):
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C: no kernel is left behind."""
    make_notebook("a_hangs.ipynb", [record_pids_cell(), "import time\ntime.sleep(300)"])
    make_notebook("b_never.ipynb", ["open('ran.txt', 'w').write('yes')"])
    pids_file = pytester.path / "pids.txt"
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--nb", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not pids_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    session.send_signal(signum)
    output, _ = session.communicate(timeout=30)
    assert session.returncode == pytest.ExitCode.INTERRUPTED
    assert b"KeyboardInterrupt" in output
    assert not (pytester.path / "ran.txt").exists()
    assert_all_dead([int(pid) for pid in pids_file.read_text().split()])


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


def test_pytest_skip_or_xfail_in_a_cell_ends_the_test_that_way(pytester, make_notebook):
    make_notebook("skips.ipynb", ["import pytest", "pytest.skip('no GPU here')", "1/0"])
    make_notebook("xfails.ipynb", ["import pytest\npytest.xfail('known bug #12')"])
    result = pytester.runpytest("--nb", "-rsx")
    result.assert_outcomes(skipped=1, xfailed=1)
    expect(
        result.stdout,
        ["SKIPPED [1] skips.ipynb:1: no GPU here", "XFAIL xfails.ipynb::xfails - known bug #12"],
    )


def test_nbmake_and_pytest_notebook_metadata_keep_their_meaning(pytester, make_notebook):
    make_notebook("lenient.ipynb", ["1/0", "print('went on')"], execution={"allow_errors": True})
    make_notebook("quick.ipynb", ["import time\ntime.sleep(30)"], execution={"timeout": 1})
    make_notebook("off.ipynb", ["1/0"], nbreg={"skip": True, "skip_reason": "flaky service"})
    result = pytester.runpytest("--nb", "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    expect(
        result.stdout,
        [
            "*cell 1 (In [1]) did not finish within the cell timeout of 1 s "
            "(notebook metadata execution.timeout)*",
            "SKIPPED [1] off.ipynb: flaky service",
        ],
    )


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


def test_markers_from_metadata_and_pyproject_select_notebooks(pytester, make_notebook):
    make_notebook("slow.ipynb", ["x = 1"], nbharness={"markers": ["slow"]})
    make_notebook("reports/net.ipynb", ["x = 1"])
    make_notebook("quick.ipynb", ["x = 1"])
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        markers = ["slow: takes long", "network: needs the network"]
        [tool.nbharness.markers]
        "reports/*.ipynb" = ["network", "slow"]
        """
    )
    pytester.runpytest("--nb", "-m", "not slow").assert_outcomes(passed=1, deselected=2)
    pytester.runpytest("--nb", "-m", "network").assert_outcomes(passed=1, deselected=2)


def test_strict_markers_rejects_an_unregistered_notebook_marker(pytester, make_notebook):
    make_notebook("typo.ipynb", ["x = 1"], nbharness={"markers": ["slwo"]})
    result = pytester.runpytest("--nb", "--strict-markers")
    expect(result.stdout, ["*'slwo' not found in `markers` configuration option*"])
    assert result.ret != pytest.ExitCode.OK


def test_kernel_env_and_cwd_are_settable_and_the_header_hides_values(pytester, make_notebook):
    (pytester.path / "work").mkdir()
    here = str(pytester.path / "work")
    make_notebook(
        "sub/env.ipynb",
        [
            "import os",
            "assert os.environ['FROM_TOML'] == 'toml', os.environ.get('FROM_TOML')",
            "assert os.environ['API_TOKEN'] == 's3cret-value'",
            f"assert os.getcwd() == {here!r}, os.getcwd()",
        ],
    )
    pytester.makepyprojecttoml(
        '[tool.nbharness]\nenv = {FROM_TOML = "toml", API_TOKEN = "overridden"}\n'
    )
    result = pytester.runpytest("--nb", "--nb-env", "API_TOKEN=s3cret-value", "--nb-cwd", "work")
    result.assert_outcomes(passed=1)
    expect(result.stdout, ["nbharness: *cwd=*work, env=API_TOKEN,FROM_TOML*"])
    assert "s3cret" not in result.stdout.str()
    bad = pytester.runpytest("--nb", "--nb-env", "NOEQUALS")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--nb-env: expected KEY=VALUE, got 'NOEQUALS'*"])


def test_find_import_errors_fails_only_for_imports(pytester, make_notebook):
    make_notebook(
        "deps.ipynb", ["1/0", "import not_installed_pkg", "from os import nothing_here", "x = 1"]
    )
    make_notebook("fine.ipynb", ["1/0", "import os"])
    result = pytester.runpytest("--nb", "--nb-find-import-errors")
    result.assert_outcomes(passed=1, failed=1)
    expect(
        result.stdout,
        [
            "cell 2 (In [2]): ModuleNotFoundError: No module named 'not_installed_pkg' "
            "(and 1 more)",
            "",
            "- cell 2 (In [2]): ModuleNotFoundError: *",
            "- cell 3 (In [3]): ImportError: cannot import name 'nothing_here' from 'os'*",
        ],
    )


def test_reruns_run_a_flaky_notebook_again_on_a_fresh_kernel(pytester, make_notebook):
    flaky = (
        "import os\n"
        "if not os.path.exists('tried'):\n"
        "    open('tried', 'w').close()\n"
        "    raise ConnectionError('service hiccup')"
    )
    make_notebook("flaky.ipynb", [flaky])
    result = pytester.runpytest("--nb", "--reruns", "1")
    result.assert_outcomes(passed=1)
    expect(result.stdout, ["*1 passed, 1 rerun*"])


def test_an_error_raised_after_a_cell_finished_still_fails(pytester, make_notebook):
    hook = (
        "def fail_after(*args):\n"
        "    raise ValueError('broken post-execute hook')\n"
        "get_ipython().events.register('post_run_cell', fail_after)"
    )
    make_notebook("late.ipynb", [hook, "x = 1"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*raised ValueError: broken post-execute hook*"])


def test_a_marker_word_in_prose_is_not_a_marker(pytester, make_notebook):
    make_notebook(
        "prose.ipynb", ["# we removed NBVAL_SKIP here: this cell must run\nraise ValueError('ran')"]
    )
    pytester.runpytest("--nb").assert_outcomes(failed=1)


def test_nbmake_mocks_and_post_cell_code_run_after_their_cell(pytester, make_notebook):
    mocked = {
        "source": "x = 1",
        "metadata": {"nbmake": {"mock": {"x": 2}, "post_cell_execute": ["y = x + 1"]}},
    }
    make_notebook("mocked.ipynb", [mocked, "assert (x, y) == (2, 3)", "1/0"])
    result = pytester.runpytest("--nb", "--nb-compare")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*cell 3 (In [*]) raised ZeroDivisionError*"])


@pytest.mark.parametrize("launcher", ["fork", "process"])
def test_pythonpath_from_nb_env_reaches_the_kernels_imports(pytester, make_notebook, launcher):
    """A forked kernel's interpreter started long ago: PYTHONPATH must still count."""
    (pytester.path / "extra").mkdir()
    (pytester.path / "extra" / "helper_mod.py").write_text("ANSWER = 42\n")
    make_notebook("uses.ipynb", ["from helper_mod import ANSWER\nassert ANSWER == 42"])
    extra = str(pytester.path / "extra")
    result = pytester.runpytest(
        "--nb", "--nb-env", f"PYTHONPATH={extra}", "--nb-launcher", launcher
    )
    result.assert_outcomes(passed=1)


def test_broken_post_cell_code_is_named_as_such_not_as_a_cell(pytester, make_notebook):
    """nbmake's post_cell_execute is not one of the user's cells: say what it is."""
    hooked = {
        "source": "x = 1",
        "metadata": {"nbmake": {"post_cell_execute": ["raise Exception('boom!')"]}},
    }
    make_notebook("hooked.ipynb", [hooked, "y = 2"])
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            "*code run after cell 1 (nbmake's mock or post_cell_execute metadata) (In [2]) "
            "raised Exception: boom!*"
        ],
    )
    assert "cell 2" not in result.stdout.str()


def test_find_import_errors_still_fails_broken_post_cell_code(pytester, make_notebook):
    """As nbmake: code the harness adds is not the notebook's to get wrong."""
    post = {"nbmake": {"post_cell_execute": ["raise Exception('boom!')"]}}
    make_notebook("hooked.ipynb", [{"source": "x = 1", "metadata": post}, "1/0"])
    result = pytester.runpytest("--nb", "--nb-find-import-errors")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*code run after cell 1 (nbmake's * raised Exception: boom!*"])


def test_find_import_errors_interrupts_a_slow_cell_and_goes_on(pytester, make_notebook):
    """Checking an environment must not wait for slow analyses: as nbmake does, a cell
    over its limit is interrupted and the next one runs."""
    make_notebook("slow.ipynb", ["import time\ntime.sleep(60)", "import not_installed_pkg"])
    started = time.monotonic()
    result = pytester.runpytest("--nb", "--nb-find-import-errors", "--nb-timeout", "1")
    assert time.monotonic() - started < 20
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["*cell 2 (In [2]): ModuleNotFoundError: No module named*"])
