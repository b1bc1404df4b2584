"""Warm imports: a fork server imports numpy, pandas and matplotlib once for its kernels,
and a kernel still cannot tell it from a fresh one, but for ``sys.modules``."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from nbharness.execute.forkserver.preload import imported_modules, modules_to_preload

from .helpers import build_notebook

#: Records what a notebook can see of its kernel, before and after its own imports.
PROBE = [
    "import sys, os, json, random\n"
    "BEFORE = sorted(m for m in ('numpy', 'pandas', 'matplotlib') if m in sys.modules)",
    "import numpy as np, pandas as pd, matplotlib as mpl, matplotlib.pyplot as plt",
    "state = {'before': BEFORE, 'pid': os.getpid(), 'np_draw': np.random.random(),\n"
    " 'random_draw': random.random(), 'backend': plt.get_backend(),\n"
    " 'rc': {k: repr(v) for k, v in mpl.rcParams.items()},\n"
    " 'max_rows': pd.get_option('display.max_rows'),\n"
    " 'matmul': float((np.ones((300, 300)) @ np.ones((300, 300)))[0, 0])}\n"
    "json.dump(state, open(os.environ.get('NBH_OUT', 'probe') + '.json', 'w'))",
    "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nplt.show()",
]


def probe(pytester: pytest.Pytester, name: str) -> dict[str, object]:
    state: dict[str, object] = json.loads((pytester.path / f"{name}.json").read_text())
    return state


def run_probes(pytester: pytest.Pytester, out: str, *args: str, passed: int = 1) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NBH_OUT", out)
        result = pytester.runpytest("--nb", "-p", "no:randomly", *args)
    result.assert_outcomes(passed=passed)


def figure_outputs(path: Path) -> list[list[str]]:
    nb = nbformat.read(path, as_version=4)
    return [sorted(o.get("data", {})) for o in nb.cells[-1].outputs]


def test_a_warm_kernel_sees_what_a_fresh_one_does(pytester, make_notebook):
    make_notebook("probe.ipynb", PROBE)
    run_probes(
        pytester, "fork", "probe.ipynb", "--nb-launcher", "fork", "--nb-output-dir", "fork-out"
    )
    run_probes(
        pytester, "process", "probe.ipynb", "--nb-launcher", "process", "--nb-output-dir", "out"
    )
    fork, fresh = probe(pytester, "fork"), probe(pytester, "process")
    assert fork["before"] == ["matplotlib", "numpy", "pandas"]  # preloaded: the difference
    assert fresh["before"] == []
    for key in ("backend", "rc", "max_rows", "matmul"):
        assert fork[key] == fresh[key], key
    fork_figure = figure_outputs(pytester.path / "fork-out" / "probe.ipynb")
    assert fork_figure == figure_outputs(pytester.path / "out" / "probe.ipynb")
    assert fork_figure == [["image/png", "text/plain"]]


def test_each_warm_kernel_draws_its_own_random_numbers(pytester, make_notebook):
    make_notebook("one.ipynb", [*PROBE[:2], PROBE[2].replace("'probe'", "'one'")])
    make_notebook("two.ipynb", [*PROBE[:2], PROBE[2].replace("'probe'", "'two'")])
    pytester.runpytest("--nb", "--nb-launcher", "fork").assert_outcomes(passed=2)
    one, two = probe(pytester, "one"), probe(pytester, "two")
    assert one["before"] == two["before"] == ["matplotlib", "numpy", "pandas"]
    assert one["np_draw"] != two["np_draw"]
    assert one["random_draw"] != two["random_draw"]


def test_nb_env_is_imported_with_and_a_folder_matplotlibrc_steps_aside(pytester, make_notebook):
    make_notebook("probe.ipynb", PROBE)
    (pytester.path / "own_rc").mkdir()
    make_notebook("own_rc/probe.ipynb", PROBE)
    (pytester.path / "own_rc" / "matplotlibrc").write_text("lines.linewidth: 7\n")
    run_probes(pytester, "probe", "--nb-launcher", "fork", "--nb-env", "MPLBACKEND=svg", passed=2)
    warm = probe(pytester, "probe")
    assert warm["before"] == ["matplotlib", "numpy", "pandas"]
    assert warm["backend"] == "svg"  # the server imported matplotlib with --nb-env applied
    own_rc = json.loads((pytester.path / "own_rc" / "probe.json").read_text())
    assert own_rc["before"] == []  # started as a new process: its matplotlibrc differs
    assert own_rc["rc"]["lines.linewidth"] == "7.0"


def test_preload_false_turns_it_off(pytester, make_notebook):
    make_notebook("probe.ipynb", PROBE)
    pytester.makepyprojecttoml("[tool.nbharness]\npreload = false\n")
    run_probes(pytester, "off", "--nb-launcher", "fork")
    assert probe(pytester, "off")["before"] == []


def test_imports_are_read_from_the_code_cells(tmp_path):
    nb = build_notebook(
        [
            "%matplotlib inline\nimport numpy as np, os.path\n!ls\nnp?",
            "from pandas.api import types\nfrom . import sibling",
            "def f(:\n    import scipy",  # the kernel will refuse it: nothing read
            {"markdown": "import sklearn"},
        ]
    )
    assert imported_modules(nb.cells) == {"numpy", "os.path", "pandas.api"}
    assert modules_to_preload(nb.cells, tmp_path / "x.ipynb") == ("numpy", "pandas")


def test_a_notebook_that_asserts_gets_pytests_assertion_rewriter_preloaded(tmp_path):
    """Its kernel imports the rewriter at its first assert; the fork server did already."""
    nb = build_notebook(["x = 1", "assert x == 1"])
    assert modules_to_preload(nb.cells, tmp_path / "x.ipynb") == ("_pytest.assertion.rewrite",)
    assert modules_to_preload(build_notebook(["x = 1"]).cells, tmp_path / "x.ipynb") == ()


def test_preload_extends_the_safe_list_and_is_checked(tmp_path, pytester, make_notebook):
    (tmp_path / "pyproject.toml").write_text('[tool.nbharness]\npreload = ["json.tool"]\n')
    nb = build_notebook(["import json.tool.extra", "import numpy"])
    assert modules_to_preload(nb.cells, tmp_path / "x.ipynb") == ("json.tool", "numpy")
    make_notebook("probe.ipynb", ["x = 1"])
    pytester.makepyprojecttoml('[tool.nbharness]\npreload = "numpy"\n')
    result = pytester.runpytest("--nb")
    result.stderr.fnmatch_lines(
        [
            "*pyproject.toml: [[]tool.nbharness] preload must be a list of strings or false,"
            " got 'numpy'"
        ]
    )
