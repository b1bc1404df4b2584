"""The project a notebook belongs to: its root and its ``[tool.nbharness]`` table.

One rule for the CLI and the pytest plugin: the nearest ``pyproject.toml`` at or above
the notebook that holds a ``[tool.nbharness]`` table; without one, the fallback root
(pytest's rootdir), else the nearest ``pyproject.toml``. Each file is parsed and checked
once per process (again only when it changes on disk).
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NbHarnessError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PYPROJECT = "pyproject.toml"


class ConfigError(NbHarnessError):
    """A configuration file that cannot be used, with the file and the key at fault."""

    def __init__(self, path: Path, key: str, reason: str) -> None:
        super().__init__(path, key, reason)
        self.path = path
        self.key = key
        self.reason = reason

    @property
    def summary(self) -> str:
        where = f" {self.key}" if self.key else ""
        return f"{self.path}:{where} {self.reason}"


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; empty when there is none; one line naming it when invalid."""
    if not path.is_file():
        return {}
    try:
        document: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(path, "", "not valid TOML: nested too deeply") from None
    return document


#: A check of one value: ``None`` when fine, else what was expected ("a table of strings").
Check = Callable[[object], str | None]


def _expect(kind: type | tuple[type, ...], wanted: str) -> Check:
    def check(value: object) -> str | None:
        return None if isinstance(value, kind) and not _is_bool_for(kind, value) else wanted

    return check


def _is_bool_for(kind: type | tuple[type, ...], value: object) -> bool:
    """``true`` is an int to Python, never a number to a user."""
    return isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))


def _list_of_str(value: object) -> str | None:
    ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    return None if ok else "a list of strings"


def _table_of_str(value: object) -> str | None:
    ok = isinstance(value, dict) and all(isinstance(item, str) for item in value.values())
    return None if ok else "a table of strings"


def _preload(value: object) -> str | None:
    """More modules the fork server may import for its kernels, or ``false``: none."""
    return None if value is False or _list_of_str(value) is None else "a list of strings or false"


def _kernel_variables(value: object) -> str | None:
    """What a gateway passes on to a kernel: only ``KERNEL_*`` variables reach it."""
    ok = isinstance(value, dict) and all(
        isinstance(key, str) and key.startswith("KERNEL_") and isinstance(item, str)
        for key, item in value.items()
    )
    return None if ok else "a table of KERNEL_* variables (strings)"


def _checked_where_used(value: object) -> str | None:
    """A value whose own reader checks it with a better message (``pairing_of``)."""
    return None


def _sanitizers(value: object) -> str | None:
    ok = isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        for pair in value
    )
    return None if ok else "a list of [pattern, replacement] pairs"


def _one_of(*choices: str) -> Check:
    def check(value: object) -> str | None:
        return None if value in choices else " or ".join(repr(c) for c in choices)

    return check


_TABLE = _expect(dict, "a table")

#: Every key ``[tool.nbharness]`` may hold, and what its value must be; sub-tables nest.
SCHEMA: dict[str, Check | dict[str, Check]] = {
    "export_root": _expect(str, "a path"),
    "pairing": _checked_where_used,
    "scripts_dir": _expect(str, "a path"),
    "strip_outputs": _expect(bool, "true or false"),
    "env": _table_of_str,
    "cache_inputs": _list_of_str,
    "preload": _preload,
    "parameters": _TABLE,
    "markers": _TABLE,
    "compare": {
        "sanitize": _sanitizers,
        "default_sanitizers": _expect(bool, "true or false"),
        "images": _one_of("hash", "skip"),
    },
    "hub": {"user_options": _TABLE},
    "gateway": {"env": _kernel_variables},
}


def check_table(path: Path, table: Mapping[str, Any]) -> None:
    """Refuse unknown keys (a typo would be ignored silently) and values of the wrong type."""
    _check_keys(path, "[tool.nbharness]", table, SCHEMA)


def _check_keys(
    path: Path, name: str, table: Mapping[str, Any], schema: Mapping[str, Check | dict[str, Check]]
) -> None:
    for key, value in table.items():
        rule = schema.get(key)
        if rule is None:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(schema))
            raise ConfigError(
                path, f"{name} {key}", f"is not a known key{hint}; known keys: {known}"
            )
        if isinstance(rule, dict):
            if not isinstance(value, dict):
                raise ConfigError(path, f"{name} {key}", "must be a table")
            _check_keys(path, f"{name[:-1]}.{key}]", value, rule)
            continue
        wanted = rule(value)
        if wanted is not None:
            raise ConfigError(path, f"{name} {key}", f"must be {wanted}, got {value!r}")


@dataclass(frozen=True)
class Project:
    """A project root and its checked ``[tool.nbharness]`` table."""

    root: Path
    #: The ``pyproject.toml`` the table came from (it may not exist).
    file: Path
    table: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def for_path(cls, path: Path, fallback: Path | None = None) -> Project:
        """The project of the notebook (or folder) at ``path``, by the module's one rule."""
        start = path.resolve()
        if not start.is_dir():
            start = start.parent
        nearest: Path | None = None
        for folder in (start, *start.parents):
            file = folder / PYPROJECT
            if not file.is_file():
                continue
            table = _tool_table(file, file.stat().st_mtime_ns)
            if table is not None:
                return cls(folder, file, table)
            nearest = nearest or folder
        root = (fallback.resolve() if fallback is not None else None) or nearest or start
        file = root / PYPROJECT
        table = _tool_table(file, file.stat().st_mtime_ns) if file.is_file() else None
        return cls(root, file, table or {})

    @property
    def export_root(self) -> Path:
        """Where exported modules go: ``export_root``, or the project root."""
        return (self.root / str(self.table.get("export_root", "."))).resolve()

    def relative(self, path: Path) -> str:
        """``path`` as module headers and path-keyed tables name it: from the root."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path.resolve().as_posix()


@functools.lru_cache(maxsize=64)
def _tool_table(file: Path, mtime_ns: int) -> dict[str, Any] | None:
    """``[tool.nbharness]`` of ``file``, checked; ``None`` when it has none.

    ``mtime_ns`` is part of the cache key: a file edited between two runs in one process
    (pytester) is read again.
    """
    tool = load_toml(file).get("tool", {})
    if not isinstance(tool, dict) or "nbharness" not in tool:
        return None
    table = tool["nbharness"]
    if not isinstance(table, dict):
        raise ConfigError(file, "[tool.nbharness]", "must be a table")
    check_table(file, table)
    return table


def tool_table(path: Path) -> dict[str, Any]:
    """``[tool.nbharness]`` of a ``pyproject.toml``, checked; empty when there is none."""
    if not path.is_file():
        return {}
    return _tool_table(path, path.stat().st_mtime_ns) or {}


def path_matches(relative: str, pattern: str) -> bool:
    """A notebook's path (from the root) against a key of a path-keyed table: the path
    itself, or a glob in which ``*`` also matches ``/``."""
    return relative == pattern or fnmatch.fnmatchcase(relative, pattern)
