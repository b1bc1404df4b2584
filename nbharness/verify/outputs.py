"""``--nb-update-outputs``: write a passing run's outputs back into the notebook file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..notebook.io import write_atomically
from ..plan.tracing import content_hashes
from ..text import cell_text
from .compare import CompareSettings, differing_cells
from .freshness import RECORD_KEY, freshness_record

if TYPE_CHECKING:
    from nbformat import NotebookNode


class NotStored(Exception):
    """Why the outputs were not written back."""


def store_outputs(
    path: Path,
    read: NotebookNode,
    executed: NotebookNode,
    settings: CompareSettings,
    inputs: Iterable[Path] = (),
) -> bool:
    """Store the fresh outputs in ``path``, and the freshness record that proves they are
    this code's and (with ``inputs``, the files the run read) these files'
    (``verify.freshness``); whether the file changed.

    The file is edited as JSON, so nothing but outputs, execution counts and the record
    changes (not even metadata nbformat would drop). A cell's outputs are replaced only when they
    differ once sanitized: a new memory address alone does not churn the file in git.
    Raises ``NotStored`` when the file is not nbformat 4 or changed while it ran.
    """
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotStored(f"cannot read it again: {exc}") from None
    if raw.get("nbformat", 0) < 4:
        raise NotStored(f"it is nbformat {raw.get('nbformat')} on disk; save it with Jupyter once")
    cells: list[dict[str, Any]] = raw.get("cells", [])
    if [cell_text(cell.get("source", "")) for cell in cells] != [
        cell.source for cell in read.cells
    ]:
        raise NotStored("it changed on disk while it ran")
    import nbformat  # the run imported it already

    fresh = json.loads(nbformat.writes(executed))["cells"]  # outputs as nbformat stores them
    differing = differing_cells(read.cells, executed.cells, settings)
    changed = False
    for index, (cell, new) in enumerate(zip(cells, fresh, strict=True)):
        if cell.get("cell_type") != "code":
            continue
        count = new.get("execution_count")
        if index in differing:
            cell["outputs"] = new.get("outputs", [])
            changed = True
        else:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "execute_result":
                    output["execution_count"] = count
        if cell.get("execution_count") != count:
            cell["execution_count"] = count
            changed = True
    metadata = raw.setdefault("metadata", {})
    ours = metadata.setdefault("nbharness", {})
    record = freshness_record(raw, executed.metadata, content_hashes(path.parent, inputs))
    if ours.get(RECORD_KEY) != record:
        ours[RECORD_KEY] = record
        changed = True
    if changed:
        write_atomically(path, json.dumps(raw, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return changed
