"""Coverage of code run in notebook kernels, into the same report as the ordinary tests.

With pytest-cov's ``--cov``, each kernel starts a ``coverage`` measurement before the
first cell (same data file, sources, branch setting and configuration as pytest-cov) and
saves it after the last; pytest-cov's own combine step then merges the kernels' data
files with the tests'. The cells themselves are left out: IPython compiles them to
temporary files that no report could show.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from .execute import Run

PROLOGUE = """\
import coverage as __nbharness_coverage_module
__nbharness_coverage = __nbharness_coverage_module.Coverage(**{options!r})
__nbharness_coverage.start()
del __nbharness_coverage_module
"""
EPILOGUE = "__nbharness_coverage.stop(); __nbharness_coverage.save()"
#: IPython's compiled cells: temporary files, not source anyone can read in a report.
CELL_FILES = "*/ipykernel_*/*"


def measured(run: Run, config: pytest.Config) -> Run:
    """``run`` with coverage started and saved in its kernel, when ``--cov`` is on."""
    options = _options(config)
    if options is None:
        return run
    return dataclasses.replace(run, prologue=PROLOGUE.format(options=options), epilogue=EPILOGUE)


def _options(config: pytest.Config) -> dict[str, Any] | None:
    """pytest-cov's measurement settings, or ``None`` when it does not measure this run."""
    controller = getattr(config.pluginmanager.get_plugin("_cov"), "cov_controller", None)
    cov = getattr(controller, "cov", None)
    if cov is None:
        return None
    topdir = Path(getattr(controller, "topdir", None) or config.invocation_params.dir)
    config_file: str | bool = False
    for candidate in (getattr(controller, "cov_config", ".coveragerc"), "pyproject.toml"):
        path = topdir / candidate
        if path.is_file():
            config_file = str(path)
            break
    return {
        "data_file": os.path.abspath(topdir / cov.config.data_file),
        "data_suffix": True,
        "source": list(getattr(controller, "cov_source", None) or []) or None,
        "branch": bool(getattr(controller, "cov_branch", False)),
        "config_file": config_file,
        "omit": [CELL_FILES],
    }
