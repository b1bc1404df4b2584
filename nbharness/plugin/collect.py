"""Collection: a ``.ipynb`` file becomes its check items and one item per planned run."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from ..config.project import ConfigError, path_matches
from ..config.settings import SETTINGS_KEY
from ..errors import InvalidNotebook, NotebookWarning
from ..notebook.io import is_python, load_notebook, nbharness_metadata, skip_reason
from ..notebook_tests.discover import find_tests
from ..plan.parameters import (
    ParameterError,
    ParameterSet,
    metadata_sets,
    notebook_language,
    project_sets,
    sets_from,
)
from ..vcs.export import has_exports
from .cell_tests import NotebookTests, add_test_items
from .checks import (
    DATAFLOW_ITEM,
    EXPORT_ITEM,
    FRESH_ITEM,
    ORDER_ITEM,
    PAIRING_ITEM,
    BrokenNotebookItem,
    DataflowItem,
    ExecutionOrderItem,
    ExportCheckItem,
    FreshItem,
    PairingCheckItem,
)
from .items import EXECUTED_FROM, NotebookItem, project_for


class NotebookFile(pytest.File):
    """A ``.ipynb`` file; yields one item per planned run."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            stored = load_notebook(self.path)
            nb = stored.content
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
            yield ExecutionOrderItem.from_parent(self, name=ORDER_ITEM, stored=stored)
        if settings.check_export and has_exports(nb):
            yield ExportCheckItem.from_parent(self, name=EXPORT_ITEM, stored=stored)
        if settings.check_pairing:
            yield PairingCheckItem.from_parent(self, name=PAIRING_ITEM, stored=stored)
        if settings.check_dataflow:
            yield DataflowItem.from_parent(self, name=DATAFLOW_ITEM, stored=stored)
        if settings.check_fresh:
            yield FreshItem.from_parent(self, name=FRESH_ITEM, stored=stored)
        reason = skip_reason(nb)
        markers = self._markers(nb)
        # Tests inside the notebook run with each of its runs (each parameter set).
        found = find_tests(nb) if is_python(notebook_language(nb, settings.kernel)) else []
        for parameters in sets:
            name = self.path.stem if parameters is None else f"{self.path.stem}[{parameters.id}]"
            item = NotebookItem.from_parent(
                self,
                name=name,
                # A nodeid string lets pytest (9.2+) read "[id]" as parameters, so that
                # --lf and --sw find failed sets again in its cache.
                nodeid=f"{self.nodeid}::{name}",
                stored=stored,
                parameters=parameters,
                tests=NotebookTests() if found else None,
            )
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))
            for marker in markers:
                item.add_marker(marker)
            yield item
            yield from add_test_items(item, found) if found else []

    def _warn_not_collected(self, source: object) -> None:
        """Say so: an executed copy in the source tree would otherwise vanish from the suite."""
        message = (
            f"{self.path.name}: not collected: it is an executed copy of {source} "
            f"(metadata nbharness.{EXECUTED_FROM}); if it should be a source notebook, "
            "restore it from git"
        )
        warnings.warn_explicit(NotebookWarning(message), NotebookWarning, str(self.path), 0)

    def _markers(self, nb: Mapping[str, Any]) -> list[pytest.MarkDecorator]:
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

    def _parameter_sets(self, nb: Mapping[str, Any]) -> list[ParameterSet]:
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


def _names(value: object) -> list[str]:
    """Marker names given as one string or a list of strings."""
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else []
