"""Hooks nbharness offers to ``conftest.py`` files and plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_nb_parameters(path: Path, config: pytest.Config) -> list[dict[str, Any]] | None:
    """Parameter sets for the notebook at ``path``, or ``None`` to leave it to the others.

    Each set is a dict of parameter values; an ``"id"`` key names the set's test id.
    A list returned here wins over the notebook's metadata and ``pyproject.toml``.
    """
    return None
