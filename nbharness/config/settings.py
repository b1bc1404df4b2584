"""One frozen settings object, built once per pytest session.

Precedence: command-line flag > ini key under ``[tool.pytest.ini_options]`` > default.
Every validation error names where the bad value came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..errors import NbHarnessError
from ..execute import DEFAULT_CELL_TIMEOUT as DEFAULT_CELL_TIMEOUT  # the options' defaults
from ..execute import DEFAULT_LAUNCHER, FORK_AVAILABLE, LAUNCHERS
from ..execute import DEFAULT_STARTUP_TIMEOUT as DEFAULT_STARTUP_TIMEOUT
from ..plan.tracing import Tracing
from ..verify.compare import CompareSettings
from .project import Project
from .remote import RemoteSettings, remote_settings
from .values import positive_seconds


@dataclass(frozen=True)
class Settings:
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    #: Where each limit came from, for the report that says which limit fired.
    cell_timeout_source: str = "the default"
    notebook_timeout: float | None = None
    notebook_timeout_source: str = "--nb-notebook-timeout"
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    startup_timeout_source: str = "the default"
    kernel: str | None = None
    output_dir: Path | None = None
    strict_raises: bool = False
    strict_params: bool = False
    #: How local kernels start: "fork" (from a warm fork server) or "process".
    launcher: str = DEFAULT_LAUNCHER
    #: Skip runs whose key matches a previous pass (``--nb-cache``).
    cache: bool = False
    #: Globs of files every notebook depends on: part of each run's key, and a change to
    #: one selects every notebook under ``--nb-changed-since``.
    cache_inputs: tuple[str, ...] = ()
    changed_since: str | None = None
    #: Add an item per exporting notebook: its modules must be up to date.
    check_export: bool = False
    check_pairing: bool = False
    #: Run past every error; fail only for imports that fail (``--nb-find-import-errors``).
    find_import_errors: bool = False
    #: Environment variables set for every kernel (``[tool.nbharness] env``, ``--nb-env``).
    env: Mapping[str, str] = field(default_factory=dict)
    #: The kernels' working directory; ``None``: each notebook's own folder.
    cwd: Path | None = None
    check_order: bool = False
    check_dataflow: bool = False
    check_fresh: bool = False
    #: Output regression settings; ``compare.enabled`` with ``--nb-compare``.
    compare: CompareSettings = field(default_factory=CompareSettings)
    update_outputs: bool = False
    #: Where kernels run when not here (``--nb-hub-url``, ``--nb-server-url``).
    remote: RemoteSettings | None = None
    #: pytest's assertion rewriting in every Python cell (off: ``--nb-no-rewrite-asserts``).
    rewrite_asserts: bool = True
    #: Local runs record the project files they read (``plan.tracing``); ``None``:
    #: remote kernels, or no pytest cache folder to keep the lists in.
    tracing: Tracing | None = None

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> Settings:
        """The settings of this session; a bad value is a usage error naming its source."""
        try:
            return cls._read(config)
        except NbHarnessError as exc:
            raise pytest.UsageError(str(exc)) from None

    @classmethod
    def _read(cls, config: pytest.Config) -> Settings:
        timeout, where = _lookup(config, "nb_timeout")
        notebook_timeout, notebook_where = _lookup(config, "nb_notebook_timeout")
        startup, startup_where = _lookup(config, "nb_startup_timeout")
        kernel, _ = _lookup(config, "nb_kernel")
        output_dir, _ = _lookup(config, "nb_output_dir")
        found = Project.for_path(config.rootpath, config.rootpath)
        project, project_file = found.table, found.file
        compare, compare_where = _lookup(config, "nb_compare")
        launcher, launcher_where = _lookup(config, "nb_launcher")
        cwd, _ = _lookup(config, "nb_cwd")
        remote = remote_settings(lambda name: _lookup(config, name), project, project_file)
        return cls(
            cell_timeout=positive_seconds(timeout, where) if timeout else DEFAULT_CELL_TIMEOUT,
            cell_timeout_source=where,
            notebook_timeout=positive_seconds(notebook_timeout, notebook_where)
            if notebook_timeout
            else None,
            notebook_timeout_source=notebook_where,
            startup_timeout=positive_seconds(startup, startup_where)
            if startup
            else DEFAULT_STARTUP_TIMEOUT,
            startup_timeout_source=startup_where,
            kernel=kernel or None,
            output_dir=config.rootpath / output_dir if output_dir else None,
            strict_raises=bool(config.getoption("nb_strict_raises")),
            strict_params=bool(config.getoption("nb_strict_params")),
            env=_kernel_env(config.getoption("nb_env") or [], project),
            cwd=config.rootpath / cwd if cwd else None,
            find_import_errors=bool(config.getoption("nb_find_import_errors")),
            check_order=_flag(config, "nb_check_order"),
            check_dataflow=_flag(config, "nb_check_dataflow"),
            check_fresh=_flag(config, "nb_check_fresh"),
            check_export=_flag(config, "nb_check_export"),
            check_pairing=_flag(config, "nb_check_pairing"),
            compare=_compare_settings(compare, compare_where, project, project_file),
            update_outputs=bool(config.getoption("nb_update_outputs")),
            launcher=_launcher(launcher, launcher_where),
            cache=_flag(config, "nb_cache"),
            cache_inputs=tuple(project.get("cache_inputs", [])),
            changed_since=config.getoption("nb_changed_since"),
            remote=remote,
            tracing=_tracing(config) if remote is None else None,
            rewrite_asserts=not _flag(config, "nb_no_rewrite_asserts"),
        )

    def verdict(self) -> dict[str, Any]:
        """The settings that can change a run's outcome: part of its ``--nb-cache`` key."""
        compare = self.compare
        return {
            "timeout": self.cell_timeout,
            "notebook_timeout": self.notebook_timeout,
            "strict_raises": self.strict_raises,
            "strict_params": self.strict_params,
            "compare": [[p.pattern, r] for p, r in compare.sanitizers]
            + [compare.images, compare.strict, compare.enabled],
        }

    def header(self) -> str:
        """What ``pytest_report_header`` shows: the settings that change a run."""
        parts = [
            f"kernel={self.kernel or 'from each notebook'}",
            f"cell timeout={self.cell_timeout:g}s",
            *([f"notebook timeout={self.notebook_timeout:g}s"] if self.notebook_timeout else []),
            *(
                ["executor=local", f"launcher={self.launcher}"]
                if self.remote is None
                else ["executor=remote"]
            ),
        ]
        if self.output_dir is not None:
            parts.append(f"output dir={self.output_dir}")
        if self.cwd is not None and self.remote is None:
            parts.append(f"cwd={self.cwd}")
        if self.remote is not None and self.remote.remote_cwd:
            parts.append(f"remote cwd={self.remote.remote_cwd}")
        if self.env:  # names only: values may be secrets
            parts.append(f"env={','.join(sorted(self.env))}")
        if self.check_order:
            parts.append("check order")
        if self.compare.enabled:
            compare = self.compare
            how = [
                *(["strict"] if compare.strict else []),
                "images by hash" if compare.images == "hash" else "images skipped",
                f"{len(compare.sanitizers)} sanitizers",
            ]
            parts.append(f"compare outputs ({', '.join(how)})")
        if self.update_outputs:
            parts.append("update outputs")
        if self.cache:
            parts.append("cache")
        if self.changed_since:
            parts.append(f"changed since {self.changed_since}")
        return "nbharness: " + ", ".join(parts)


def _lookup(config: pytest.Config, name: str) -> tuple[str | None, str]:
    """The value of an option and where it came from, flag first, then ini."""
    value = config.getoption(name)
    if value is not None:
        return str(value), "--" + name.replace("_", "-")
    value = config.getini(name)
    if value:
        return str(value), f"ini option {name}"
    return None, "the default"


def _launcher(value: str | None, where: str) -> str:
    if value is None:
        return DEFAULT_LAUNCHER
    if value not in LAUNCHERS:
        raise pytest.UsageError(f"{where}: expected one of {', '.join(LAUNCHERS)}, got {value!r}")
    if value == "fork" and not FORK_AVAILABLE:
        raise pytest.UsageError(f"{where}: the fork launcher needs Linux; use 'process'")
    return value


def _kernel_env(flags: list[str], project: Mapping[str, Any]) -> dict[str, str]:
    """``[tool.nbharness] env`` (checked by ``Project``), then each ``--nb-env KEY=VALUE``."""
    env = dict(project.get("env", {}))
    for flag in flags:
        key, sep, value = flag.partition("=")
        if not sep or not key:
            raise pytest.UsageError(f"--nb-env: expected KEY=VALUE, got {flag!r}")
        env[key] = value
    return env


def _tracing(config: pytest.Config) -> Tracing | None:
    """Traced inputs are kept in pytest's cache folder (``-p no:cacheprovider``: none)."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    return Tracing(cache.mkdir("nbharness-traced"), config.rootpath)


def _flag(config: pytest.Config, name: str) -> bool:
    return bool(config.getoption(name) or config.getini(name))


def _compare_settings(
    value: str | None, where: str, project: Mapping[str, Any], path: Path
) -> CompareSettings:
    """``--nb-compare`` / ``nb_compare`` (on, strict, off) with ``[tool.nbharness.compare]``:
    built also when off, for nbval's check-output cells and ``--nb-update-outputs``."""
    mode = (value or "off").lower()
    if mode not in COMPARE_MODES:
        known = ", ".join(sorted(COMPARE_MODES))
        raise pytest.UsageError(f"{where}: expected one of {known}, got {value!r}")
    return CompareSettings.from_table(
        project.get("compare", {}), f"{path} [tool.nbharness.compare]", COMPARE_MODES[mode]
    )


#: ``--nb-compare`` values: how each reads.
COMPARE_MODES: dict[str, str | None] = {
    "on": "on",
    "true": "on",
    "strict": "strict",
    "off": None,
    "false": None,
}


#: Where the session's settings live, for hooks, items and the ``notebook`` fixture.
SETTINGS_KEY = pytest.StashKey[Settings]()


def settings_of(config: pytest.Config) -> Settings:
    """The session's settings: built at configure time with ``--nb``; without it, on first
    use (the ``notebook`` fixture), so that plain pytest never reads them otherwise."""
    if SETTINGS_KEY not in config.stash:
        config.stash[SETTINGS_KEY] = Settings.from_pytest(config)
    return config.stash[SETTINGS_KEY]
