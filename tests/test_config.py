"""The project and its settings: one root rule, checked keys, built only with --nb."""

from __future__ import annotations

import nbformat
import pytest

from nbharness.cli import main
from nbharness.config.project import ConfigError, Project

from .helpers import build_notebook, expect

PLAIN_TEST = "def test_plain():\n    assert True\n"


@pytest.mark.parametrize(
    "config",
    [
        '[tool.nbharness]\nenv = ["not", "a", "table"]\n',
        '[tool.nbharness]\nexport-root = "src"\n',
        '[tool.pytest.ini_options]\nnb_hub_url = "http://127.0.0.1:1"\nnb_hub_user = "alice"\n',
    ],
    ids=["bad-env", "unknown-key", "hub-without-token"],
)
def test_plain_pytest_runs_whatever_the_nbharness_config_says(pytester, monkeypatch, config):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    pytester.makepyprojecttoml(config)
    pytester.makepyfile(test_plain=PLAIN_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_with_nb_the_same_config_is_refused_in_one_line(pytester):
    pytester.makepyprojecttoml('[tool.nbharness]\nenv = ["not", "a", "table"]\n')
    result = pytester.runpytest("--nb")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *pyproject.toml: [[]tool.nbharness] env must be a table of strings, got *"]
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            'export-root = "src"',
            "[tool.nbharness] export-root is not a known key (did you mean 'export_root'?); "
            "known keys: cache_inputs, compare, env, export_root, gateway, hub, markers, pairing, "
            "parameters, preload, scripts_dir, strip_outputs",
        ),
        (
            'paring = "py:percent"',
            "[tool.nbharness] paring is not a known key (did you mean 'pairing'?)*",
        ),
        (
            'cache_input = ["a.csv"]',
            "*cache_input is not a known key (did you mean 'cache_inputs'?)*",
        ),
        ('strip_outputs = "yes"', "*strip_outputs must be true or false, got 'yes'"),
        ("[tool.nbharness.hub]\nuser_options = 7", "*[tool.nbharness.hub] user_options must be *"),
        (
            "[tool.nbharness.compare]\nimage = 'hash'",
            "*[tool.nbharness.compare] image is not a known key*",
        ),
        ("export_root = 3", "*export_root must be a path, got 3"),
    ],
    ids=["export-root", "paring", "cache_input", "strip-yes", "user-options-7", "image", "int"],
)
def test_unknown_keys_and_wrong_types_are_refused_naming_file_and_key(pytester, config, message):
    pytester.makepyprojecttoml(f"[tool.nbharness]\n{config}\n")
    pytester.makefile(".ipynb", a=nbformat.writes(build_notebook(["1"])))
    result = pytester.runpytest("--nb")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expect(result.stderr, [f"ERROR: {pytester.path / 'pyproject.toml'}: {message}"])
    with pytest.raises(ConfigError) as caught:
        Project.for_path(pytester.path / "a.ipynb")
    assert caught.value.path == pytester.path / "pyproject.toml"
    assert caught.value.key.split()[-1] in config


def test_the_cli_refuses_an_unknown_key_too(pytester, capsys, monkeypatch):
    monkeypatch.chdir(pytester.path)
    pytester.makepyprojecttoml('[tool.nbharness]\nparing = "py:percent"\n')
    nbformat.write(build_notebook(["1"]), pytester.path / "a.ipynb")
    assert main(["check", "--pairing", "a.ipynb"]) == 1
    err = capsys.readouterr()
    assert "paring is not a known key (did you mean 'pairing'?)" in err.out + err.err


NESTED_CELLS = ["#| default_exp tools", "#| export\ndef double(x):\n    return 2 * x"]


@pytest.fixture
def nested(pytester, monkeypatch):
    """A top project holding the pytest ini, and ``sub/`` with its own ``[tool.nbharness]``."""
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\naddopts = ''\n")
    sub = pytester.mkdir("sub")
    (sub / "pyproject.toml").write_text('[tool.nbharness]\nexport_root = "src"\n')
    (sub / "nb").mkdir()
    nbformat.write(build_notebook(NESTED_CELLS), sub / "nb" / "a.ipynb")
    monkeypatch.chdir(pytester.path)
    return sub


def test_a_nested_project_is_one_project_for_the_cli_and_the_plugin(pytester, nested, capsys):
    assert main(["export", "sub/nb/a.ipynb"]) == 0
    assert (nested / "src" / "tools.py").is_file()
    assert main(["check", "--export", "sub/nb/a.ipynb"]) == 0
    capsys.readouterr()
    result = pytester.runpytest("--nb", "--nb-check-export", "-k", "export")
    result.assert_outcomes(passed=1)
    assert Project.for_path(nested / "nb" / "a.ipynb", pytester.path).root == nested


def test_without_an_nbharness_table_the_fallback_root_wins(pytester):
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\n")
    sub = pytester.mkdir("sub")
    (sub / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert Project.for_path(sub / "a.ipynb", pytester.path).root == pytester.path
    assert Project.for_path(sub / "a.ipynb").root == sub


@pytest.mark.parametrize(
    ("args", "ini", "where"),
    [
        (["--nb-timeout", "inf"], "", "--nb-timeout"),
        ([], 'nb_timeout = "inf"', "ini option nb_timeout"),
        (["--nb-startup-timeout", "Infinity"], "", "--nb-startup-timeout"),
    ],
)
def test_an_infinite_timeout_is_refused_in_one_line(pytester, args, ini, where):
    pytester.makepyprojecttoml(f"[tool.pytest.ini_options]\n{ini}\n")
    result = pytester.runpytest("--nb", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {where}: expected a finite number of seconds, got *"])


def test_a_nested_projects_parameter_sets_apply_to_its_notebooks(pytester, make_notebook):
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\naddopts = ''\n")
    make_notebook("sub/nb/p.ipynb", [{"source": "x = 0", "tags": ["parameters"]}, "assert x"])
    (pytester.path / "sub" / "pyproject.toml").write_text(
        '[tool.nbharness.parameters]\n"nb/p.ipynb" = [{x = 1}, {x = 2}]\n'
    )
    result = pytester.runpytest("--nb", "-v")
    result.assert_outcomes(passed=2)
    expect(result.stdout, ["sub/nb/p.ipynb::p[x=1] PASSED*", "sub/nb/p.ipynb::p[x=2] PASSED*"])


def test_a_bad_key_in_a_nested_project_fails_its_notebooks_in_one_line(pytester, make_notebook):
    make_notebook("sub/a.ipynb", ["x = 1"])
    make_notebook("b.ipynb", ["x = 1"])
    (pytester.path / "sub" / "pyproject.toml").write_text("[tool.nbharness]\nmarker = 1\n")
    result = pytester.runpytest("--nb")
    result.assert_outcomes(passed=1, failed=1)
    expect(
        result.stdout,
        [
            "*sub/pyproject.toml: [tool.nbharness] marker is not a known key "
            "(did you mean 'markers'?)*"
        ],
    )


def test_the_notebook_fixture_without_nb_reports_a_bad_setting_in_one_line(pytester, make_notebook):
    make_notebook("a.ipynb", ["x = 1"])
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nnb_timeout = "-1"\n')
    pytester.makepyfile(test_fixture="def test_it(notebook):\n    notebook('a.ipynb')\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    expect(
        result.stdout,
        ["ini option nb_timeout: expected a positive number of seconds, got '-1'"],
    )
    assert "Traceback" not in result.stdout.str()
    assert "settings.py" not in result.stdout.str()
