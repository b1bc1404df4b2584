"""The project a command runs in: its root and its ``[tool.nbharness]`` table."""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path
from typing import Any

from ..errors import NbHarnessError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; empty when there is none; one line naming it when invalid."""
    if not path.is_file():
        return {}
    try:
        document: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NbHarnessError(f"{path}: not valid TOML: {exc}") from None
    return document


def tool_table(path: Path) -> dict[str, Any]:
    """``[tool.nbharness]`` of a ``pyproject.toml``; empty when there is none."""
    table = load_toml(path).get("tool", {}).get("nbharness", {})
    if not isinstance(table, dict):
        raise NbHarnessError(f"{path}: [tool.nbharness] must be a table")
    return table


def path_matches(relative: str, pattern: str) -> bool:
    """A notebook's path (from the root) against a key of a path-keyed table: the path
    itself, or a glob in which ``*`` also matches ``/``."""
    return relative == pattern or fnmatch.fnmatchcase(relative, pattern)


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding a ``pyproject.toml``, else ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


def export_root(root: Path, table: dict[str, Any]) -> Path:
    """Where exported modules go: ``[tool.nbharness] export_root``, or the project root."""
    value = table.get("export_root", ".")
    if not isinstance(value, str):
        raise NbHarnessError(
            f"{root / 'pyproject.toml'}: [tool.nbharness] export_root must be a path"
        )
    return (root / value).resolve()
