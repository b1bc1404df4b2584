"""pytest collectors and items: a notebook file, and one test item per run of it."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

from ..config.project import ConfigError, Project, path_matches
from ..config.settings import SETTINGS_KEY, Settings, settings_of
from ..errors import (
    IMPORT_ERRORS,
    CellError,
    CellProblem,
    InvalidNotebook,
    MissingException,
    MissingImports,
    NbHarnessError,
    NotebookWarning,
    ProblemList,
    display_path,
)
from ..execute import Executor, ExecutorSettings, RunResult, make_executor
from ..notebook.cellmarks import is_injected, user_index
from ..notebook.io import (
    NotWritten,
    nbharness_metadata,
    read_notebook,
    skip_reason,
    write_notebook,
)
from ..plan import run_for
from ..plan.parameters import (
    PARAMETERS_TAG,
    ParameterError,
    ParameterSet,
    inject,
    metadata_sets,
    project_sets,
    sets_from,
    unknown_names,
)
from ..report import CrashLine, FailureRepr, failing_line, render
from ..vcs.export import ExportOutOfDate, has_exports, modules_of, stale_modules
from ..vcs.pairing import Pairing, pairing_of, pairing_problem, script_line
from ..verify.compare import compare_outputs
from ..verify.coverage import measured
from ..verify.order import ExecutionOrderError, order_problems
from ..verify.outputs import NotStored, store_outputs
from .cache import PROPERTY, SKIP_REASON, PassedRuns, run_key
from .remote_session import REMOTE_PLUGIN, RemoteSession

EXECUTOR_KEY = pytest.StashKey[Executor]()
#: Metadata key marking an executed copy (``--nb-output-dir``), which is never collected.
EXECUTED_FROM = "executed_from"
#: Report property of a run whose outputs ``--nb-update-outputs`` wrote back.
UPDATED = "nbharness_updated_outputs"
#: Name of the execution-order lint's item: ``analysis.ipynb::execution-order``.
ORDER_ITEM = "execution-order"
#: Name of the export check's item: ``analysis.ipynb::export``.
EXPORT_ITEM = "export"
PAIRING_ITEM = "pairing"
#: A parameter id longer than this (in bytes) is cut and hashed in an executed copy's name.
MAX_ID_IN_FILE_NAME = 100


class NotebookFile(pytest.File):
    """A ``.ipynb`` file; yields one item per planned run."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            nb, warning = read_notebook(self.path)
            source = nbharness_metadata(nb).get(EXECUTED_FROM)
            if source:  # an executed copy written by --nb-output-dir, not a notebook to test
                self._warn_not_collected(source)
                return
            sets: list[ParameterSet | None] = [*self._parameter_sets(nb)] or [None]
        except (InvalidNotebook, ParameterError, ConfigError) as exc:
            # A collection error would stop the whole session; a failing item lets
            # every other notebook run and still names this file in one line.
            yield BrokenNotebookItem.from_parent(self, name=self.path.stem, error=exc)
            return
        settings = self.config.stash[SETTINGS_KEY]
        if settings.check_order:
            yield ExecutionOrderItem.from_parent(self, name=ORDER_ITEM, notebook=nb)
        if settings.check_export and has_exports(nb):
            yield ExportCheckItem.from_parent(self, name=EXPORT_ITEM, notebook=nb)
        if settings.check_pairing:
            yield PairingCheckItem.from_parent(self, name=PAIRING_ITEM, notebook=nb)
        reason = skip_reason(nb)
        markers = self._markers(nb)
        for parameters in sets:
            name = self.path.stem if parameters is None else f"{self.path.stem}[{parameters.id}]"
            item = NotebookItem.from_parent(
                self,
                name=name,
                # A nodeid string lets pytest (9.2+) read "[id]" as parameters, so that
                # --lf and --sw find failed sets again in its cache.
                nodeid=f"{self.nodeid}::{name}",
                notebook=nb,
                parameters=parameters,
                warning=warning,
            )
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))
            for marker in markers:
                item.add_marker(marker)
            yield item

    def _warn_not_collected(self, source: object) -> None:
        """Say so: an executed copy in the source tree would otherwise vanish from the suite."""
        message = (
            f"{self.path.name}: not collected: it is an executed copy of {source} "
            f"(metadata nbharness.{EXECUTED_FROM}); if it should be a source notebook, "
            "restore it from git"
        )
        warnings.warn_explicit(NotebookWarning(message), NotebookWarning, str(self.path), 0)

    def _markers(self, nb: NotebookNode) -> list[pytest.MarkDecorator]:
        """pytest markers from the notebook's metadata and ``[tool.nbharness.markers]``.

        They go through ``pytest.mark``, so ``--strict-markers`` rejects an unregistered one.
        """
        project = project_for(self.config, self.path)
        relative = project.relative(self.path)
        names = _names(nbharness_metadata(nb).get("markers", []))
        for pattern, listed in project.table.get("markers", {}).items():
            if path_matches(relative, pattern):
                names += _names(listed)
        return [getattr(pytest.mark, name) for name in dict.fromkeys(names)]

    def _parameter_sets(self, nb: NotebookNode) -> list[ParameterSet]:
        """The first source that has sets wins: the hook, the metadata, pyproject.toml."""
        from_hook = self.config.hook.pytest_nb_parameters(path=self.path, config=self.config)
        if from_hook is not None:
            return sets_from(from_hook, f"{self.path.name}: pytest_nb_parameters")
        project = project_for(self.config, self.path)
        table = project.table.get("parameters", {})
        return (
            metadata_sets(nb, self.path)
            or project_sets(table, project.relative(self.path), project.file.name)
            or []
        )


class _NotebookItemBase(pytest.Item):
    # pytest accepts any object with ``toterminal``; its ``TerminalRepr`` base is private.
    def repr_failure(  # type: ignore[override]
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: str | None = None,
    ) -> object:
        error = excinfo.value
        if not isinstance(error, NbHarnessError):
            return super().repr_failure(excinfo, style)  # type: ignore[arg-type]
        tbstyle = style or self.config.getoption("tbstyle", "auto")
        text = render(error, tbstyle, fulltrace=bool(self.config.getoption("fulltrace")))
        return FailureRepr(text, CrashLine(self.nodeid.split("::")[0], error.summary))

    def reportinfo(self) -> tuple[Path, int, str]:
        # The "domain" is the failure's headline. pytest prints its dots as "::" in
        # ``-v`` lines when the test id ends with it, so it must never be a test id's tail.
        return self.path, 0, self.headline()

    def headline(self) -> str:
        """The notebook's path (and parameter set): tells two notebook2.ipynb apart."""
        path, name = self.nodeid.split("::", 1)
        return path + name[len(self.path.stem) :]


class BrokenNotebookItem(_NotebookItemBase):
    """Stands in for a notebook that cannot be planned, and fails with the reason."""

    def __init__(self, *, error: NbHarnessError, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.error = error

    def runtest(self) -> None:
        raise self.error


class _StoredNotebookItem(_NotebookItemBase):
    """A check of the notebook as stored: it runs no kernel."""

    def __init__(self, *, notebook: NotebookNode, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.notebook = notebook


class ExecutionOrderItem(_StoredNotebookItem):
    """The execution-order lint of one notebook: reads stored counts, runs nothing."""

    def runtest(self) -> None:
        problems = order_problems(self.notebook.cells)
        if problems:
            raise ExecutionOrderError(problems)

    def headline(self) -> str:
        return f"{self.nodeid.split('::')[0]} (execution order)"


class ExportCheckItem(_StoredNotebookItem):
    """The notebook's exported modules exist and are what ``nbharness export`` would write."""

    def runtest(self) -> None:
        project = project_for(self.config, self.path)
        modules = modules_of(self.notebook, project.relative(self.path), project.export_root)
        problems = stale_modules(modules)
        if problems:
            raise ExportOutOfDate(problems)

    def headline(self) -> str:
        return f"{self.nodeid.split('::')[0]} (exported modules)"


class PairingCheckItem(_StoredNotebookItem):
    """The notebook has its script twin, in sync (when the project pairs notebooks)."""

    def runtest(self) -> None:
        pairing = pairing_for(self.config, self.path, self.notebook)
        if pairing is None:
            pytest.skip("the project does not pair notebooks with scripts")
        problem = pairing_problem(self.notebook, self.path, pairing)
        if problem:
            raise ProblemList([problem])

    def headline(self) -> str:
        return f"{self.nodeid.split('::')[0]} (paired script)"


class NotebookItem(_NotebookItemBase):
    """One run of one notebook (with one parameter set, if it has any) on a fresh kernel."""

    def __init__(
        self,
        *,
        notebook: NotebookNode,
        parameters: ParameterSet | None = None,
        warning: str | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.notebook = notebook
        self.parameters = parameters
        self.warning = warning

    def runtest(self) -> None:
        settings = self.config.stash[SETTINGS_KEY]
        self._skip_if_unchanged(settings)
        if self.warning:
            self._warn(self.warning)
        nb = self._parameterized(settings)
        run = run_for(self.path, nb, settings, self.notebook)
        measurement = None
        if settings.remote is None:  # a remote kernel's coverage data would stay remote
            run, measurement = measured(run, self.config)
        result = executor_for(self.config).execute(run)
        if measurement is not None:
            pairing = pairing_for(self.config, self.path, self.notebook)
            twin = pairing.twin(self.path) if pairing is not None else None
            script = twin if twin is not None and twin.exists() else None
            measurement.map_cells(
                result.notebook, self.notebook, script, pairing.fmt if pairing else ""
            )
        for message in result.warnings:
            self._warn(message)
        if settings.output_dir is not None:
            self._save_executed(result.notebook, settings.output_dir)
        error: NbHarnessError | None
        if settings.find_import_errors and result.error is None:
            # Every other cell error is beside the point; broken set-up code is not.
            error = _injected_error(result.notebook) or failed_imports(result.notebook)
        else:
            error = result.error or self._unraised(result, settings.strict_raises)
        if error is None and self.parameters is None:
            error = self._check_outputs(result.notebook, settings)
        ran = result.notebook.cells
        if error is None:
            return
        if isinstance(error, CellError):
            _outcome_from_kernel(error)
        if isinstance(error, CellProblem) and error.index < len(ran):
            # What a cell printed before it raised, hung or took its kernel down.
            self._attach_cell_streams(result.notebook, error.index)
        if (
            isinstance(error, CellProblem)
            and error.index < len(ran)
            and is_injected(ran[error.index])
        ):
            error = dataclasses.replace(error, injected=_injected_where(ran, error.index))
        elif isinstance(error, CellProblem):
            # Count cells as the user's notebook has them, without the cells added to the run.
            error = dataclasses.replace(error, index=user_index(ran, error.index))
            error = dataclasses.replace(error, script_location=self._in_script(error))
        raise error

    def _save_executed(self, executed: NotebookNode, output_dir: Path) -> None:
        """The executed copy, for CI artefacts. A disk that refuses it warns: the run's
        verdict is about the notebook, and the warning summary still shows the loss."""
        executed.metadata.setdefault("nbharness", {})[EXECUTED_FROM] = self.nodeid
        try:
            write_notebook(executed, output_path(self, output_dir))
        except NotWritten as exc:
            self._warn(f"executed copy not saved: {exc}")

    def _in_script(self, error: CellProblem) -> str:
        """Where the failing line is in the paired script, when the notebook has a twin."""
        pairing = pairing_for(self.config, self.path, self.notebook)
        if pairing is None or not pairing.twin(self.path).exists():
            return ""
        line = script_line(self.notebook, pairing.fmt, error.index, failing_line(error) or 1)
        if line is None:
            return ""
        return f"{display_path(pairing.twin(self.path))}:{line}"

    def _skip_if_unchanged(self, settings: Settings) -> None:
        """With ``--nb-cache``: skip a run that passed with the same key; else file the key."""
        passed_runs: PassedRuns | None = self.config.pluginmanager.get_plugin("nbharness-cache")
        if passed_runs is None or settings.update_outputs:
            return
        key = run_key(
            self.notebook,
            None if self.parameters is None else self.parameters.values,
            settings.kernel,
            settings.verdict(),
            passed_runs.inputs(self.config.rootpath, settings.cache_inputs),
        )
        if passed_runs.passed(self.nodeid, key):
            pytest.skip(SKIP_REASON)
        self.user_properties.append((PROPERTY, key))

    def _parameterized(self, settings: Settings) -> NotebookNode:
        """The notebook to run: with papermill's injected cell when there is a set."""
        if self.parameters is None:
            return self.notebook
        values = self.parameters.values
        unknown = unknown_names(self.notebook, values, settings.kernel)
        if unknown:
            message = (
                f"parameter {', '.join(map(repr, unknown))} of set {self.parameters.id!r} "
                f"is not defined in the notebook's {PARAMETERS_TAG!r} cell"
            )
            if settings.strict_params:
                raise ParameterError(message)
            self._warn(message)
        return inject(self.notebook, values, settings.kernel)[0]

    def _check_outputs(self, run: NotebookNode, settings: Settings) -> NbHarnessError | None:
        """Store the fresh outputs (``--nb-update-outputs``) or compare them (``--nb-compare``)."""
        # Compare and store the user's cells only, not the cells added to the run.
        executed = nbformat.from_dict(
            {**run, "cells": [c for c in run.cells if not is_injected(c)]}
        )
        if settings.update_outputs:
            try:
                if store_outputs(self.path, self.notebook, executed, settings.compare):
                    self.user_properties.append((UPDATED, True))
            except (NotStored, NotWritten) as exc:
                self._warn(f"outputs not updated: {exc}")
            return None
        nbreg = self.notebook.metadata.get("nbreg") or {}
        ignore = nbreg.get("diff_ignore", []) if isinstance(nbreg, dict) else []
        replace = nbreg.get("diff_replace", []) if isinstance(nbreg, dict) else []
        stored = self.notebook.cells
        # Without --nb-compare, cells marked check-output are still compared (nbval-lax).
        only_marked = not settings.compare.enabled
        return compare_outputs(
            stored, executed.cells, settings.compare, only_marked, ignore, replace
        )

    def _warn(self, message: str) -> None:
        """A warning located at the notebook, not at nbharness's code."""
        warning = NotebookWarning(f"{self.path.name}: {message}")
        warnings.warn_explicit(warning, NotebookWarning, filename=str(self.path), lineno=0)

    def _unraised(self, result: RunResult, strict: bool) -> NbHarnessError | None:
        for index in result.unraised:
            cell = result.notebook.cells[index]
            problem = MissingException(index, cell.source, cell.get("execution_count"))
            if strict:
                return problem
            self._warn(problem.summary)
        return None

    def _attach_cell_streams(self, nb: NotebookNode, index: int) -> None:
        """The failing cell's stdout/stderr, shown as pytest's "Captured ..." sections."""
        for name in ("stdout", "stderr"):
            text = "".join(
                out.get("text", "")
                for out in nb.cells[index].get("outputs", [])
                if out.get("output_type") == "stream" and out.get("name") == name
            )
            if text:
                self.add_report_section("call", name, text)


def _names(value: object) -> list[str]:
    """Marker names given as one string or a list of strings."""
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else []


def _injected_where(cells: list[NotebookNode], index: int) -> str:
    """How a report names a cell that was added to the run, not written by the user."""
    if "injected-parameters" in cells[index].get("metadata", {}).get("tags", []):
        return "the injected parameters cell"
    before = user_index(cells, index)
    return f"code run after cell {before} (nbmake's mock or post_cell_execute metadata)"


def _injected_error(nb: NotebookNode) -> CellError | None:
    """An error raised by code added to the run (nbmake's post_cell_execute, say)."""
    for index, cell in enumerate(nb.cells):
        if not is_injected(cell):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return CellError.from_output(index, cell, out)
    return None


def failed_imports(nb: NotebookNode) -> MissingImports | None:
    found = [
        f"cell {number} (In [{cell.execution_count}]): {out['ename']}: {out['evalue']}"
        for number, cell in enumerate(nb.cells, start=1)
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error" and out.get("ename") in IMPORT_ERRORS
    ]
    return MissingImports(found) if found else None


def _outcome_from_kernel(error: CellError) -> None:
    """``pytest.skip()`` or ``pytest.xfail()`` called in a cell ends the test that way.

    The kernel is a separate process: its ``pytest.skip`` raises there, and comes back
    as an error named after pytest's exception class.
    """
    reason = error.evalue or f"{error.ename} in {error.where}"
    if error.ename == "Skipped":
        # Reported at the notebook, not at this line (pytest's own flag for skip marks).
        raise pytest.skip.Exception(reason, _use_item_location=True)
    if error.ename == "XFailed":
        pytest.xfail(reason)


def project_for(config: pytest.Config, path: Path) -> Project:
    """The notebook's project, by the rule the CLI uses; pytest's rootdir as the fallback."""
    return Project.for_path(path, config.rootpath)


def pairing_for(config: pytest.Config, path: Path, nb: NotebookNode) -> Pairing | None:
    """The notebook's pairing, from its project's ``[tool.nbharness]`` table."""
    project = project_for(config, path)
    return pairing_of(project.root, dict(project.table), nb)


def executor_for(config: pytest.Config) -> Executor:
    """The session's executor, entered on first use and closed at session end."""
    if EXECUTOR_KEY not in config.stash:
        remote = settings_of(config).remote
        if remote is None:
            executor = make_executor("local", ExecutorSettings())
        else:
            session = config.pluginmanager.get_plugin(REMOTE_PLUGIN)
            assert isinstance(session, RemoteSession)
            on = ExecutorSettings(session.server(), remote.remote_cwd, remote.max_kernels)
            executor = make_executor("remote", on)
        config.stash[EXECUTOR_KEY] = executor.__enter__()
    return config.stash[EXECUTOR_KEY]


def close_executor(config: pytest.Config) -> None:
    executor = config.stash.get(EXECUTOR_KEY, None)
    if executor is not None:
        del config.stash[EXECUTOR_KEY]
        executor.__exit__(None, None, None)


def output_path(item: pytest.Item, output_dir: Path) -> Path:
    """Where the executed notebook goes: the test root's tree, mirrored under ``output_dir``."""
    try:
        relative = item.path.relative_to(item.config.rootpath)
    except ValueError:
        relative = Path(item.path.name)
    if isinstance(item, NotebookItem) and item.parameters is not None:
        safe_id = re.sub(r'[/\\:*?"<>|\x00-\x1f]', "_", item.parameters.id)
        if len(safe_id.encode()) > MAX_ID_IN_FILE_NAME:  # file names stop at 255 bytes
            digest = hashlib.sha256(safe_id.encode()).hexdigest()[:12]
            safe_id = f"{safe_id.encode()[:60].decode(errors='ignore')}-{digest}"
        relative = relative.with_name(f"{relative.stem}[{safe_id}]{relative.suffix}")
    return output_dir / relative


def sources_overwritten(items: list[pytest.Item], output_dir: Path) -> list[Path]:
    """Collected notebooks that an executed copy would replace (``--nb-output-dir .``)."""
    sources = {item.path.resolve() for item in items if isinstance(item, NotebookItem)}
    copies = {
        output_path(item, output_dir).resolve() for item in items if isinstance(item, NotebookItem)
    }
    return sorted(sources & copies)
