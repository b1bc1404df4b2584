"""Planning: what one run of a notebook is, from the settings and the notebook itself."""

from __future__ import annotations

from pathlib import Path

from nbformat import NotebookNode

from ..config.settings import Settings
from ..execute import Run
from ..notebook.cellmarks import with_nbmake_hooks
from ..notebook.io import execution_metadata


def run_for(path: Path, nb: NotebookNode, settings: Settings, stored: NotebookNode) -> Run:
    """The run of ``nb`` (``stored`` as read, parameters not injected) under ``settings``."""
    timeout, allow_errors = execution_metadata(stored)
    return Run(
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
        kernel=settings.kernel,
        launcher=settings.launcher,
        allow_errors=allow_errors or settings.find_import_errors,
        interrupt_on_timeout=settings.find_import_errors,
    )
