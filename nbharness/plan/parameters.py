"""Parameter sets: where they come from, their test ids, and injection through papermill.

A notebook's sets come from exactly one source, the first that has any:

1. the ``pytest_nb_parameters(path, config)`` hook (a ``conftest.py``), when it returns a list;
2. the notebook's metadata ``{"nbharness": {"parameters": [...]}}``;
3. ``[tool.nbharness.parameters]`` in ``pyproject.toml``: notebook path or glob → list of tables.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.project import path_matches
from ..errors import NbHarnessError
from ..notebook.io import cell_tags, kernel_name, nbharness_metadata, stated_language

if TYPE_CHECKING:
    from nbformat import NotebookNode

PARAMETERS_TAG = "parameters"
#: Longest id built from values before we fall back to the set's position.
MAX_ID_LENGTH = 60
_PLAIN = (str, int, float, bool, type(None))


class ParameterError(NbHarnessError):
    """A parameter set that cannot be used: its source, shape or values are wrong."""


@dataclass(frozen=True)
class ParameterSet:
    id: str
    values: dict[str, Any]


def sets_from(raw: object, where: str) -> list[ParameterSet]:
    """Validate a list of tables from ``where`` and give each a unique, readable id."""
    if not isinstance(raw, list) or not all(isinstance(entry, Mapping) for entry in raw):
        raise ParameterError(f"{where}: parameter sets must be a list of tables (dicts)")
    sets = []
    seen: set[str] = set()
    for number, entry in enumerate(raw, start=1):
        values = {str(key): value for key, value in entry.items() if key != "id"}
        for name, value in values.items():
            _check_injectable(value, f"{where}: set {number}, parameter {name!r}")
        explicit = entry.get("id")
        set_id = (
            _printable(str(explicit)) if explicit not in (None, "") else _id_from(values, number)
        )
        if set_id in seen:
            set_id = f"{set_id}-{number}"
        seen.add(set_id)
        sets.append(ParameterSet(set_id, values))
    return sets


def metadata_sets(nb: Mapping[str, Any], path: Path) -> list[ParameterSet] | None:
    raw = nbharness_metadata(nb).get("parameters")
    return None if raw is None else sets_from(raw, f"{path.name} metadata nbharness.parameters")


def project_sets(
    table: Mapping[str, object], relative_path: str, where: str
) -> list[ParameterSet] | None:
    """The sets of the first key in ``[tool.nbharness.parameters]`` matching the path."""
    for pattern, raw in table.items():
        if path_matches(relative_path, pattern):
            return sets_from(raw, f"{where} [tool.nbharness.parameters] {pattern!r}")
    return None


def inject(
    nb: NotebookNode, values: dict[str, Any], kernel: str | None
) -> tuple[NotebookNode, int]:
    """The notebook with papermill's injected-parameters cell, and that cell's index."""
    if _parameters_cell(nb) is None:
        raise ParameterError(
            f"it has parameter sets but no cell tagged {PARAMETERS_TAG!r} to inject them after"
        )
    from papermill.parameterize import parameterize_notebook  # slow import: only when used

    name, language = _kernel_and_language(nb, kernel)
    nb = copy.deepcopy(nb)
    # What papermill's own reader adds and its injection relies on.
    nb.metadata.setdefault("papermill", {"parameters": {}})
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    injected = parameterize_notebook(nb, values, kernel_name=name, language=language)
    index = next(
        i for i, cell in enumerate(injected.cells) if "injected-parameters" in cell_tags(cell)
    )
    return injected, index


def unknown_names(nb: NotebookNode, values: dict[str, Any], kernel: str | None) -> list[str]:
    """Names a set gives that the ``parameters`` cell does not define (when it can tell)."""
    cell = _parameters_cell(nb)
    if cell is None:
        return []
    from papermill.translators import papermill_translators

    name, language = _kernel_and_language(nb, kernel)
    try:
        defined = {
            p.name for p in papermill_translators.find_translator(name, language).inspect(cell)
        }
    except (NotImplementedError, ValueError):
        return []  # papermill cannot read this language's parameters cell
    return [key for key in values if key not in defined]


def _parameters_cell(nb: NotebookNode) -> NotebookNode | None:
    return next((cell for cell in nb.cells if PARAMETERS_TAG in cell_tags(cell)), None)


def _kernel_and_language(nb: NotebookNode, kernel: str | None) -> tuple[str, str]:
    return kernel or kernel_name(nb) or "python3", notebook_language(nb, kernel)


def notebook_language(nb: Mapping[str, Any], kernel: str | None = None) -> str:
    """The language the notebook runs in ("R", "bash"): that of ``kernel`` (an override
    such as ``--nb-kernel``) when it is installed here, else what the notebook says."""
    if kernel:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        with contextlib.suppress(NoSuchKernel):
            return str(KernelSpecManager().get_kernel_spec(kernel).language or "python")
    return stated_language(nb["metadata"])


def _check_injectable(value: object, where: str) -> None:
    """Only values papermill writes faithfully as code: plain JSON/TOML data."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"{where}: {value!r} cannot be injected as code")
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_injectable(item, where)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ParameterError(f"{where}: dict keys must be strings, not {key!r}")
            _check_injectable(item, where)
        return
    hint = "; write it as a string" if isinstance(value, (datetime.date, datetime.time)) else ""
    raise ParameterError(
        f"{where}: a {type(value).__name__} cannot be injected into a notebook{hint}"
    )


def _printable(text: str) -> str:
    """An id as one line: control characters escaped (``x\\ny``), as pytest escapes ids."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda match: repr(match.group())[1:-1], text)


def _id_from(values: dict[str, Any], number: int) -> str:
    """``alpha=0.1-n=3`` for plain values; ``set2`` when that would be unreadable."""
    if not values:
        return f"set{number}"
    parts = []
    for name, value in values.items():
        if not isinstance(value, _PLAIN):
            return f"set{number}"
        parts.append(f"{name}={value}")
    text = re.sub(r"\s+", "_", "-".join(parts))
    return text if len(text) <= MAX_ID_LENGTH else f"set{number}"
