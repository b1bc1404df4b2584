"""Parameter sets: sources, ids, injection through papermill, faults."""

from __future__ import annotations

import datetime

import nbformat
import pytest

from nbharness.plan.parameters import ParameterError, sets_from

from .helpers import expect

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")

PARAMETERS = {"source": "alpha = 0.5\nlabel = 'default'", "tags": ["parameters"]}
SHOW = "print(f'alpha={alpha} label={label}')"


def test_ids_come_from_id_keys_or_the_values():
    sets = sets_from(
        [{"id": "small", "n": 1}, {"alpha": 0.1, "n": 3}, {"data": [1, 2]}, {"alpha": 0.1, "n": 3}],
        "here",
    )
    assert [s.id for s in sets] == ["small", "alpha=0.1-n=3", "set3", "alpha=0.1-n=3-4"]
    assert sets[0].values == {"n": 1}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"alpha": 1}, "here: parameter sets must be a list of tables"),
        (
            [{"when": datetime.date(2026, 1, 2)}],
            "here: set 1, parameter 'when': a date cannot be injected",
        ),
        ([{"x": float("nan")}], "here: set 1, parameter 'x': nan cannot be injected as code"),
        ([{"x": {1: "a"}}], "here: set 1, parameter 'x': dict keys must be strings"),
        ([{"x": object()}], "here: set 1, parameter 'x': a object cannot be injected"),
    ],
)
def test_sets_that_cannot_be_injected_are_refused_with_the_reason(raw, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
        sets_from(raw, "here")


def test_metadata_sets_become_one_item_each_with_the_values_injected(pytester, make_notebook):
    sets = [{"id": "small", "alpha": 0.1, "label": "s"}, {"alpha": 2, "label": "large"}]
    make_notebook("analysis.ipynb", [PARAMETERS, SHOW], nbharness={"parameters": sets})
    result = pytester.runpytest("--nb", "-v", "--nb-output-dir", "out", "-rP", "-s")
    result.assert_outcomes(passed=2)
    expect(
        result.stdout,
        [
            "analysis.ipynb::analysis[small] PASSED*",
            "analysis.ipynb::analysis[alpha=2-label=large] PASSED*",
        ],
    )
    executed = nbformat.read(pytester.path / "out" / "analysis[small].ipynb", as_version=4)
    injected = executed.cells[1]
    assert injected.metadata.tags == ["injected-parameters"]
    assert "alpha = 0.1" in injected.source
    assert executed.cells[2].outputs[0]["text"] == "alpha=0.1 label=s\n"
    assert (pytester.path / "out" / "analysis[alpha=2-label=large].ipynb").exists()
    pytester.runpytest("--nb", "-k", "small").assert_outcomes(passed=1)


def test_pyproject_sets_match_notebooks_by_path_or_glob(pytester, make_notebook):
    make_notebook("reports/north.ipynb", [PARAMETERS, SHOW])
    make_notebook("reports/south.ipynb", [PARAMETERS, SHOW])
    make_notebook("other.ipynb", ["x = 1"])
    pytester.makepyprojecttoml(
        """
        [tool.nbharness.parameters]
        "reports/south.ipynb" = [{id = "exact", alpha = 9}]
        "reports/*.ipynb" = [{id = "a", alpha = 1}, {id = "b", label = "b"}]
        """
    )
    result = pytester.runpytest("--nb", "-v")
    result.assert_outcomes(passed=4)
    expect(
        result.stdout,
        [
            "other.ipynb::other PASSED*",
            "reports/north.ipynb::north[a] PASSED*",
            "reports/north.ipynb::north[b] PASSED*",
            "reports/south.ipynb::south[exact] PASSED*",
        ],
    )


def test_the_conftest_hook_wins_over_metadata(pytester, make_notebook):
    make_notebook(
        "analysis.ipynb",
        [PARAMETERS, "assert alpha == 0.01, alpha"],
        nbharness={"parameters": [{"id": "from-metadata", "alpha": 1}]},
    )
    pytester.makeconftest(
        """
        def pytest_nb_parameters(path, config):
            if path.name == "analysis.ipynb":
                return [{"id": "ci", "alpha": 0.01}]
        """
    )
    result = pytester.runpytest("--nb", "-v")
    result.assert_outcomes(passed=1)
    expect(result.stdout, ["analysis.ipynb::analysis[ci] PASSED*"])


def test_a_failing_set_fails_alone_and_cells_are_counted_as_in_the_notebook(
    pytester, make_notebook
):
    sets = [{"id": "ok", "alpha": 1}, {"id": "zero", "alpha": 0}]
    make_notebook(
        "ratio.ipynb",
        [{"markdown": "# Ratio"}, PARAMETERS, "print(1 / alpha)"],
        nbharness={"parameters": sets},
    )
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1, failed=1)
    expect(
        result.stdout,
        [
            "*_ ratio.ipynb[zero] _*",
            "cell 3 (In [3]) raised ZeroDivisionError: division by zero",
            "FAILED ratio.ipynb::ratio[zero] - cell 3*",
        ],
    )


def test_sets_without_a_parameters_cell_fail_in_one_line(pytester, make_notebook):
    make_notebook("plain.ipynb", ["x = 1"], nbharness={"parameters": [{"x": 2}]})
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        ["it has parameter sets but no cell tagged 'parameters' to inject them after"],
    )


def test_an_unknown_parameter_warns_or_fails_when_strict(pytester, make_notebook):
    make_notebook(
        "typo.ipynb", [PARAMETERS, SHOW], nbharness={"parameters": [{"id": "t", "alpah": 1}]}
    )
    lenient = pytester.runpytest("--nb")
    lenient.assert_outcomes(passed=1, warnings=1)
    expect(
        lenient.stdout,
        [
            "*typo.ipynb: parameter 'alpah' of set 't' is not defined in the notebook's "
            "'parameters' cell"
        ],
    )
    strict = pytester.runpytest("--nb", "--nb-strict-params")
    strict.assert_outcomes(failed=1)
    expect(strict.stdout, ["parameter 'alpah' of set 't' is not defined*"])


def test_values_that_cannot_be_injected_fail_the_notebook_in_one_line(pytester, make_notebook):
    make_notebook("dated.ipynb", [PARAMETERS, SHOW])
    pytester.makepyprojecttoml(
        """
        [tool.nbharness.parameters]
        "dated.ipynb" = [{when = 2026-11-25}]
        """
    )
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        [
            "pyproject.toml [tool.nbharness.parameters] 'dated.ipynb': set 1, parameter 'when': "
            "a date cannot be injected into a notebook; write it as a string"
        ],
    )


def test_a_pyproject_with_a_syntax_error_is_a_usage_error(pytester, make_notebook):
    make_notebook("a.ipynb", ["x = 1"])
    pytester.makepyprojecttoml('[tool.nbharness.parameters]\n"a.ipynb" = [{alpha = }]\n')
    result = pytester.runpytest("--nb")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expect(result.stderr, ["*pyproject.toml: *(at line 2, column *)"])


def test_metadata_sets_that_are_not_a_list_fail_in_one_line(pytester, make_notebook):
    make_notebook("odd.ipynb", [PARAMETERS], nbharness={"parameters": {"alpha": 1}})
    result = pytester.runpytest("--nb")
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        ["odd.ipynb metadata nbharness.parameters: parameter sets must be a list of tables*"],
    )


def test_a_bad_pyproject_is_named_also_when_pytest_reads_another_config(pytester, make_notebook):
    make_notebook("a.ipynb", ["x = 1"])
    (pytester.path / "custom.ini").write_text("[pytest]\n")
    (pytester.path / "pyproject.toml").write_text("[tool.nbharness]\nx = = 1\n")
    result = pytester.runpytest("--nb", "-c", "custom.ini", "--rootdir", str(pytester.path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expect(result.stderr, ["*pyproject.toml: not valid TOML: * (at line 2, column *)"])


def test_last_failed_reruns_only_the_failed_set(pytester, make_notebook):
    sets = [{"id": "ok", "alpha": 1}, {"id": "zero", "alpha": 0}]
    make_notebook("ratio.ipynb", [PARAMETERS, "print(1 / alpha)"], nbharness={"parameters": sets})
    pytester.runpytest("--nb").assert_outcomes(passed=1, failed=1)
    rerun = pytester.runpytest("--nb", "--lf", "-v")
    rerun.assert_outcomes(failed=1)
    expect(rerun.stdout, ["*rerun previous 1 failure*", "ratio.ipynb::ratio[zero] FAILED*"])


def test_set_ids_that_are_not_file_names_still_get_an_output_file(pytester, make_notebook):
    sets = [{"id": "2026/11: north", "alpha": 1}, {"id": "", "alpha": 2}]
    make_notebook("odd.ipynb", [PARAMETERS, SHOW], nbharness={"parameters": sets})
    result = pytester.runpytest("--nb", "--nb-output-dir", "out", "-v")
    result.assert_outcomes(passed=2)
    expect(
        result.stdout, ["odd.ipynb::odd[2026/11: north] PASSED*", "odd.ipynb::odd[alpha=2] PASSED*"]
    )
    assert (pytester.path / "out" / "odd[2026_11_ north].ipynb").exists()
    assert (pytester.path / "out" / "odd[alpha=2].ipynb").exists()
