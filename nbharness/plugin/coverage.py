"""What pytest-cov measures, read at the pytest edge for the plan stage (``--cov``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

#: The name pytest-cov registers its plugin under; its own ``cov`` fixture looks it up so.
PYTEST_COV_PLUGIN = "_cov"


def coverage_options(config: pytest.Config) -> dict[str, Any] | None:
    """pytest-cov's measurement settings, or ``None`` when it does not measure this run."""
    controller = getattr(config.pluginmanager.get_plugin(PYTEST_COV_PLUGIN), "cov_controller", None)
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
        "source": _sources(getattr(controller, "cov_source", None) or [], topdir),
        "branch": bool(getattr(controller, "cov_branch", False)),
        "config_file": config_file,
    }


def _sources(sources: list[str], topdir: Path) -> list[str] | None:
    """``--cov`` sources for a kernel that runs elsewhere (the notebook's folder): folders
    made absolute, package names as they are."""
    if not sources:
        return None
    return [str((topdir / s).resolve()) if (topdir / s).is_dir() else s for s in sources]
