"""Options that shape a run: ini keys, kernel env and folder, reruns, find-import-errors."""

from __future__ import annotations

import time

import pytest

from .helpers import expect

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")


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
