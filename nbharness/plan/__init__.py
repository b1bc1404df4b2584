"""Planning: the whole ``Run`` of a notebook, from the settings and the notebook itself.

A parameter set is injected, nbmake's cell hooks added, the limits chosen, and coverage
started and saved around the cells when asked: the ``Run`` leaves here complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..execute import Run
from ..notebook.cellmarks import with_nbmake_hooks
from ..notebook.io import execution_metadata, is_python
from ..notebook_tests.kernel_code import prologue as tests_prologue
from ..notebook_tests.kernel_code import rewrites_asserts
from ..verify.coverage import CoverageOptions, Measurement, measurement_for
from .parameters import (
    PARAMETERS_TAG,
    ParameterError,
    ParameterSet,
    inject,
    notebook_language,
    unknown_names,
)

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from ..config.settings import Settings


@dataclass(frozen=True)
class Planned:
    """A run, and what its caller needs beside it."""

    run: Run
    #: Where the kernel's coverage goes, when the run measures it.
    measurement: Measurement | None = None
    #: Things worth a warning about the plan (a parameter the notebook does not define).
    warnings: tuple[str, ...] = ()


def plan(
    path: Path,
    stored: NotebookNode,
    settings: Settings,
    parameters: ParameterSet | None = None,
    *,
    coverage: CoverageOptions | None = None,
    kernel: str | None = None,
    to_run: NotebookNode | None = None,
) -> Planned:
    """The run of ``stored`` (as read) under ``settings``, with ``parameters`` injected.

    ``to_run`` is ``stored`` with code a test added; ``kernel`` overrides the settings' one.
    Raises ``ParameterError`` for a name the notebook does not define with --nb-strict-params.
    """
    kernel = kernel or settings.kernel
    nb = stored if to_run is None else to_run
    warnings: tuple[str, ...] = ()
    if parameters is not None:
        warnings = _undefined(stored, parameters, kernel, settings.strict_params)
        nb = inject(nb, parameters.values, kernel)[0]
    language = notebook_language(stored, kernel)
    python = is_python(language)
    if not python:
        warnings += _python_only(language, coverage is not None, settings.find_import_errors)
    measurement, prologue, epilogue = None, "", ""
    if coverage is not None and python:
        measurement, prologue, epilogue = measurement_for(coverage)
    find_import_errors = settings.find_import_errors and python
    if settings.tracing is not None and python:  # what the run reads: before coverage, after it
        traced_prologue, traced_epilogue = settings.tracing.code(path)
        prologue, epilogue = traced_prologue + prologue, epilogue + traced_epilogue
    if python:  # assertion rewriting and in-notebook tests
        prologue += "\n" + tests_prologue(rewrites_asserts(stored, settings.rewrite_asserts))
    timeout, allow_errors = execution_metadata(stored)
    run = Run(
        path=path,
        notebook=with_nbmake_hooks(nb),
        cwd=settings.cwd or path.parent,
        env=settings.env,
        # The notebook's own limit (nbmake's metadata) wins over flags and ini.
        cell_timeout=timeout or settings.cell_timeout,
        cell_timeout_source="notebook metadata execution.timeout"
        if timeout
        else settings.cell_timeout_source,
        notebook_timeout=settings.notebook_timeout,
        notebook_timeout_source=settings.notebook_timeout_source,
        startup_timeout=settings.startup_timeout,
        startup_timeout_source=settings.startup_timeout_source,
        kernel=kernel,
        launcher=settings.launcher,
        allow_errors=allow_errors or find_import_errors,
        interrupt_on_timeout=find_import_errors,
        prologue=prologue,
        epilogue=epilogue,
    )
    return Planned(run, measurement, warnings)


def _python_only(language: str, coverage: bool, find_import_errors: bool) -> tuple[str, ...]:
    """One line for each Python-only feature asked of a notebook in another language:
    it steps aside, and the notebook runs as a plain test."""
    notes = []
    if coverage:
        notes.append(
            f"coverage measures Python kernels only; this {language} notebook is not measured"
        )
    if find_import_errors:
        notes.append(
            f"--nb-find-import-errors reads Python's ImportError only; this {language} "
            "notebook runs as a plain test"
        )
    return tuple(notes)


def _undefined(
    stored: NotebookNode, parameters: ParameterSet, kernel: str | None, strict: bool
) -> tuple[str, ...]:
    """A warning for names the set gives that the notebook's parameters cell does not
    define; with ``strict`` (--nb-strict-params), a ``ParameterError``."""
    unknown = unknown_names(stored, parameters.values, kernel)
    if not unknown:
        return ()
    message = (
        f"parameter {', '.join(map(repr, unknown))} of set {parameters.id!r} "
        f"is not defined in the notebook's {PARAMETERS_TAG!r} cell"
    )
    if strict:
        raise ParameterError(message)
    return (message,)
