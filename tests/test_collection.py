"""Which files `pytest --nb` collects, and notebooks as pytest items: selection, junit, xdist."""

from __future__ import annotations

import nbformat
import pytest

from .helpers import expect

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")


def test_notebooks_are_not_collected_without_the_flag(pytester, make_notebook):
    make_notebook("a.ipynb", ["1/0"])
    result = pytester.runpytest()
    result.assert_outcomes()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


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


@pytest.mark.slow
def test_xdist_spreads_notebooks_over_workers(pytester, make_notebook):
    for n in range(3):
        make_notebook(f"nb{n}.ipynb", [f"x = {n}"])
    make_notebook("broken.ipynb", ["1/0"])
    result = pytester.runpytest_subprocess("--nb", "-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    expect(result.stdout, ["*cell 1 (In [1]) raised ZeroDivisionError*"])


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


def test_notebook_metadata_can_skip_a_notebook_with_a_reason(pytester, make_notebook):
    make_notebook("gpu.ipynb", ["1/0"], nbharness={"skip": "needs a GPU"})
    result = pytester.runpytest("--nb", "-rs")
    result.assert_outcomes(skipped=1)
    expect(result.stdout, ["SKIPPED [1] gpu.ipynb: needs a GPU"])
