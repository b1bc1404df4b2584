"""Notebooks in other kernels' languages, end to end on the real kernels: bash
(bash_kernel), R (IRkernel) and xeus-python (xpython); and kernels that report a failure
only in their reply, or not at all (``reporting_kernel.py``).

A kernel that is not installed skips its tests, unless ``NBH_REQUIRE_KERNELS=1`` (CI),
which fails them.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from nbharness.cli import main
from nbharness.errors import CellError

from . import reporting_kernel
from .helpers import assert_all_dead, expect, ports_taken, signalled_session

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")


@dataclass(frozen=True)
class Language:
    """How to say the same things in one kernel's language."""

    kernel: str
    language: str
    fails: str  # the source of a failing cell (the notebook's cell 2)
    failure: str  # the one-line reason for it
    sleeps: str
    dies: str  # a cell that kills its own kernel with SIGTERM
    pids: str  # a cell that writes the kernel's pid to pids.txt
    parameters: str  # a parameters cell setting alpha and label
    shows: str  # prints "alpha=... label=..."
    script: str  # the paired script's extension


BASH = Language(
    kernel="bash",
    language="bash",
    fails="ls /no/such/dir",
    failure="cell 2 (In [2]) failed: its last command `ls /no/such/dir` exited with status 2",
    sleeps="sleep 300",
    dies="kill -TERM $PPID",
    pids="echo $PPID > pids.txt",
    parameters="alpha=0.5\nlabel=default",
    shows='echo "alpha=$alpha label=$label"',
    script="sh",
)
R = Language(
    kernel="ir",
    language="R",
    fails="check <- function(v) stop('bad value: ', v)\ncheck(3)",
    failure="cell 2 (In [2]) raised an R error in check(3): bad value: 3",
    sleeps="Sys.sleep(300)",
    dies="tools::pskill(Sys.getpid(), tools::SIGTERM)",
    pids="writeLines(as.character(Sys.getpid()), 'pids.txt')",
    parameters="alpha <- 0.5\nlabel <- 'default'",
    shows="cat(sprintf('alpha=%s label=%s\\n', alpha, label))",
    script="R",
)
XPYTHON = Language(
    kernel="xpython",
    language="python",
    fails="raise ValueError('boom')",
    failure="cell 2 (In [2]) raised ValueError: boom",
    sleeps="import time\ntime.sleep(300)",
    dies="import os\nos.kill(os.getpid(), 15)",
    pids="import os\nopen('pids.txt', 'w').write(str(os.getpid()))",
    parameters="alpha = 0.5\nlabel = 'default'",
    shows="print(f'alpha={alpha} label={label}')",
    script="py",
)
LANGUAGES = [pytest.param(lang, id=lang.kernel) for lang in (BASH, R, XPYTHON)]


@pytest.fixture(params=LANGUAGES)
def lang(request: pytest.FixtureRequest) -> Language:
    """Each kernel in turn: skipped when not installed, failed when CI requires it."""
    language: Language = request.param
    if language.kernel not in KernelSpecManager().find_kernel_specs():
        reason = f"kernel {language.kernel!r} is not installed"
        if os.environ.get("NBH_REQUIRE_KERNELS") == "1":
            pytest.fail(f"{reason} (NBH_REQUIRE_KERNELS=1)")
        pytest.skip(reason)
    return language


def spec(lang: Language) -> dict[str, str]:
    return {"name": lang.kernel, "display_name": lang.kernel, "language": lang.language}


def test_a_notebook_passes_and_a_failing_cell_fails_in_the_languages_terms(
    pytester, make_notebook, lang
):
    make_notebook("passes.ipynb", [lang.parameters, lang.shows], kernelspec=spec(lang))
    make_notebook("fails.ipynb", [lang.parameters, lang.fails, lang.shows], kernelspec=spec(lang))
    result = pytester.runpytest("--nb", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    expect(result.stdout, [lang.failure])
    expect(result.stdout, [f"FAILED fails.ipynb::fails - {lang.failure[:40]}*"])


def test_a_timeout_and_a_dead_kernel_end_in_one_line(pytester, make_notebook, lang):
    make_notebook("hangs.ipynb", [lang.pids, lang.sleeps], kernelspec=spec(lang))
    make_notebook("dies.ipynb", [lang.dies], kernelspec=spec(lang))
    result = pytester.runpytest("--nb", "--nb-timeout", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    expect(
        result.stdout,
        ["cell 2 (In [2]) did not finish within the cell timeout of 3 s (--nb-timeout)*"],
    )
    expect(result.stdout, ["kernel died (killed by SIGTERM) while running cell 1*"])
    assert_all_dead([int((pytester.path / "pids.txt").read_text())])


def test_a_kernel_killed_by_sigkill_is_reported_as_such(pytester, make_notebook):
    make_notebook("dies.ipynb", ["kill -9 $PPID"], kernelspec=spec(BASH))
    result = pytester.runpytest("--nb", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    expect(result.stdout, ["kernel died (killed by SIGKILL) while running cell 1*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.slow
def test_ctrl_c_stops_the_session_and_the_kernel(pytester, make_notebook, lang):
    make_notebook("hangs.ipynb", [lang.pids, lang.sleeps], kernelspec=spec(lang))
    pids = pytester.path / "pids.txt"
    returncode, output = signalled_session(pytester.path, pids, signal.SIGINT)
    assert returncode == pytest.ExitCode.INTERRUPTED, output.decode()
    assert_all_dead([int(pids.read_text())])


def test_parameter_sets_are_injected_in_the_notebooks_language(pytester, make_notebook, lang):
    sets = [{"id": "small", "alpha": 0.1, "label": "s"}, {"alpha": 2, "label": "large"}]
    make_notebook(
        "analysis.ipynb",
        [{"source": lang.parameters, "tags": ["parameters"]}, lang.shows],
        kernelspec=spec(lang),
        nbharness={"parameters": sets},
    )
    result = pytester.runpytest("--nb", "-v", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "analysis.ipynb::analysis[small] PASSED" in out
    assert "analysis.ipynb::analysis[alpha=2-label=large] PASSED" in out


def test_stored_outputs_are_compared(pytester, make_notebook, lang):
    stored = {"output_type": "stream", "name": "stdout", "text": "alpha=0.5 label=default\n"}
    make_notebook(
        "same.ipynb",
        [
            {"source": lang.parameters, "count": 1},
            {"source": lang.shows, "count": 2, "outputs": [stored]},
        ],
        kernelspec=spec(lang),
    )
    drifted = {**stored, "text": "alpha=9 label=default\n"}
    make_notebook(
        "drifted.ipynb",
        [
            {"source": lang.parameters, "count": 1},
            {"source": lang.shows, "count": 2, "outputs": [drifted]},
        ],
        kernelspec=spec(lang),
    )
    result = pytester.runpytest("--nb", "--nb-compare", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    expect(
        result.stdout,
        [
            "outputs differ from the stored ones in cell 2 (In [2])",
            "*-alpha=9 label=default",
            "+alpha=0.5 label=default",
        ],
    )


def test_the_order_lint_reads_any_languages_notebook(pytester, make_notebook, lang):
    make_notebook(
        "shuffled.ipynb",
        [{"source": lang.parameters, "count": 2}, {"source": lang.shows, "count": 1}],
        kernelspec=spec(lang),
    )
    result = pytester.runpytest("--nb", "--nb-check-order", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_a_notebook_pairs_with_its_languages_script(tmp_path, monkeypatch, lang):
    from .helpers import build_notebook

    (tmp_path / "pyproject.toml").write_text('[tool.nbharness]\npairing = "auto:percent"\n')
    nbformat.write(build_notebook([lang.shows], kernelspec=spec(lang)), tmp_path / "report.ipynb")
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "."]) == 0
    script = tmp_path / f"report.{lang.script}"
    assert lang.shows in script.read_text()


@pytest.fixture
def reporting(pytester, monkeypatch) -> dict[str, str]:
    """The test kernel that reports failures only in its reply, or not at all."""
    reporting_kernel.install(pytester.path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(pytester.path / "jupyter"))
    return {"name": reporting_kernel.NAME, "display_name": "Reporting", "language": "plaintext"}


@pytest.mark.parametrize("where", ["in the execute_reply", "on iopub"])
def test_a_failure_told_only_in_the_reply_or_only_on_iopub_fails(
    pytester, make_notebook, reporting, where
):
    fails = "fail-in-reply" if where == "in the execute_reply" else "fail-on-iopub"
    make_notebook("one_way.ipynb", ["hello", fails, "more"], kernelspec=reporting)
    result = pytester.runpytest("--nb", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    expect(result.stdout, [f"cell 2 (In [2]) raised Failure: reported only {where}"])


def test_a_kernel_that_reports_no_failure_is_warned_about_once(pytester, make_notebook, reporting):
    make_notebook("a.ipynb", ["fail-silently"], kernelspec=reporting)
    make_notebook("b.ipynb", ["fail-silently"], kernelspec=reporting)
    result = pytester.runpytest("--nb", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    warning = (
        "kernel 'reporting' (plaintext) wrote to stderr in cell 1 yet reported no error; "
        "nbharness fails a cell only when its kernel reports an error"
    )
    assert out.count(warning) == 1, out


@pytest.mark.parametrize("lang", [BASH, R], ids=["bash", "ir"], indirect=True)
def test_python_only_run_features_step_aside_with_one_line(pytester, make_notebook, lang):
    make_notebook("fails.ipynb", [lang.parameters, lang.fails], kernelspec=spec(lang))
    # In a process of its own: coverage warns that it measured nothing when the session
    # ends, after the inner session's own filters are gone.
    result = pytester.runpytest_subprocess(
        *("--nb", "--nb-find-import-errors", "-p", "no:cacheprovider"),
        *(f"--cov={pytester.path}", "--cov-report=", "-W", "ignore:No data was collected"),
    )
    # Not run past its error as the import finder would: the notebook is a plain test.
    result.assert_outcomes(failed=1)
    expect(result.stdout, [lang.failure])
    out = result.stdout.str()
    assert f"coverage measures Python kernels only; this {lang.language} notebook" in out
    assert f"--nb-find-import-errors reads Python's ImportError only; this {lang.language}" in out


def test_the_fixtures_python_only_questions_are_refused_in_one_line(pytester, make_notebook):
    if BASH.kernel not in KernelSpecManager().find_kernel_specs():
        pytest.skip("bash_kernel is not installed")
    make_notebook("shell.ipynb", ["greeting=hello", "echo $greeting"], kernelspec=spec(BASH))
    pytester.makepyfile(
        """
        import pytest
        from nbharness.errors import CodeError

        def test_it(notebook):
            nb = notebook("shell.ipynb")
            assert nb.text(1) == "hello\\n"
            assert nb.execute("echo $greeting-again").outputs[0].text == "hello-again\\n"
            refused = r"needs a Python kernel, and this notebook's runs bash"
            with pytest.raises(CodeError, match=refused):
                nb.value("1")
            with pytest.raises(CodeError, match=refused):
                nb.call("f")
            with pytest.raises(CodeError, match=refused), nb.patch("x"):
                pass
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("language", "source", "output", "summary"),
    [
        (
            "bash",
            "cd /tmp\nfor f in a b; do\n  false\ndone",
            {"ename": "", "evalue": "1"},
            "cell 2 (In [3]) failed: its last command exited with status 1",
        ),
        (
            "bash",
            "grep -q x data.txt  # a comment\n# and a comment line",
            {"ename": "", "evalue": "1"},
            "cell 2 (In [3]) failed: its last command `grep -q x data.txt  # a comment` "
            "exited with status 1",
        ),
        (
            "R",
            "stop('top')",
            {"ename": "ERROR", "evalue": "Error in eval(expr, envir, enclos): top\n"},
            "cell 2 (In [3]) raised an R error: top",
        ),
        (
            "R",
            "x",
            {"ename": "ERROR", "evalue": "Error: object 'x' not found\n"},
            "cell 2 (In [3]) raised an R error: object 'x' not found",
        ),
        (
            "python",
            "d['a']",
            {"ename": "<class 'KeyError'>", "evalue": "'a'"},
            "cell 2 (In [3]) raised KeyError: 'a'",
        ),
    ],
)
def test_failures_are_worded_for_their_language(language, source, output, summary):
    error = CellError.from_output(1, {"source": source, "execution_count": 3}, output, language)
    assert error.summary == summary


def test_the_language_of_an_overriding_kernel_counts(pytester, make_notebook):
    if BASH.kernel not in KernelSpecManager().find_kernel_specs():
        pytest.skip("bash_kernel is not installed")
    make_notebook("shell.ipynb", ["echo hi", "ls /no/such/dir"])  # stored as a python3 notebook
    result = pytester.runpytest(
        "--nb", "--nb-kernel", "bash", "--nb-find-import-errors", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=1)
    expect(result.stdout, [BASH.failure])
    assert "--nb-find-import-errors reads Python's ImportError only; this bash" in (
        result.stdout.str()
    )


def test_a_kernel_on_tcp_starts_while_other_processes_take_free_ports(
    pytester, make_notebook, lang
):
    """bash, R and xeus kernels keep TCP: their ports come from below the ephemeral range,
    so no port 0 of another process can be one of them. From inside it, R's kernel died
    here with "zmq.bind fails"."""
    make_notebook("ok.ipynb", [lang.parameters, lang.shows], kernelspec=spec(lang))
    with ports_taken():
        result = pytester.runpytest_subprocess("--nb", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
