"""Notebooks in git review and merges: the text ``git diff`` shows, and the merge driver.

``review_text`` is what a reviewer reads: the notebook as a script, then one line per
output (type, size, a short hash for images, the first line of text, the error). git
runs it through a diff driver of our own name, so a machine without nbharness still
gets git's plain diff.

``merge`` is git's merge driver for notebooks: git merges text line by line and notebooks
are JSON, so a plain merge of two edits to one notebook conflicts on brace lines and
outputs. Here the three versions are written as scripts, merged by ``git merge-file``
like any text, and the merged script becomes the notebook again. Cells neither side
changed keep their outputs (from our side, or theirs when only they ran it); a conflict
leaves git's markers inside the cell, in a notebook that still opens, and the driver
exits non-zero so git reports the conflict.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..notebook.io import as_node, read_notebook, write_notebook
from ..report import strip_ansi
from .git import merge_file
from .pairing import DEFAULT_FORMAT
from .scripts import rebuilt, script_text

if TYPE_CHECKING:
    from nbformat import NotebookNode


def review_text(nb: NotebookNode) -> str:
    """The notebook as a reviewer reads it: its script, then one line per output."""
    lines = [script_text(nb, DEFAULT_FORMAT).rstrip("\n"), "", "# Outputs"]
    for number, cell in enumerate(nb.cells, start=1):
        for out in cell.get("outputs", []):
            lines.append(f"# cell {number}: {_summary(out)}")
    return "\n".join(lines) + "\n"


def _summary(out: dict[str, object]) -> str:
    kind = str(out.get("output_type"))
    if kind == "error":
        return f"error {out.get('ename')}: {out.get('evalue')}"
    if kind == "stream":
        text = strip_ansi("".join(out.get("text", "")))  # type: ignore[arg-type]
        return f"{out.get('name')} ({len(text.splitlines())} lines) {_first(text)}"
    parts = []
    data = out.get("data", {})
    assert isinstance(data, dict)
    for mime, value in sorted(data.items()):
        text = "".join(value) if isinstance(value, list) else str(value)
        if mime.startswith("image/"):
            parts.append(
                f"{mime} {len(text)} bytes sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
            )
        elif mime == "text/plain":
            parts.append(f"{mime} {_first(text)}")
        else:
            parts.append(f"{mime} ({len(text)} chars)")
    return f"{kind}: " + "; ".join(parts)


def _first(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:120] + (" …" if len(first) > 120 else "")


#: Metadata derived from other files: when the sides disagree it is dropped, not a
#: conflict (without a sync record, the next ``nbharness sync`` decides from content).
_DERIVED = {"nbharness.synced"}


@dataclass
class MergeResult:
    """How a merge went: markers left in cells, and notebook metadata both sides changed."""

    cells_conflict: bool
    #: Dotted keys (``nbharness.skip``) changed differently on both sides; ours was kept.
    metadata_conflicts: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.cells_conflict and not self.metadata_conflicts


def merge(base: Path, ours: Path, theirs: Path, fmt: str = DEFAULT_FORMAT) -> MergeResult:
    """Merge ``theirs`` into ``ours`` (rewritten in place)."""
    base_nb, our_nb, their_nb = (read_notebook(path)[0] for path in (base, ours, theirs))
    merged_text, cells_conflict = merge_file(
        *(_cells_text(nb, fmt) for nb in (base_nb, our_nb, their_nb))
    )
    result = rebuilt(our_nb, merged_text, fmt)
    _merge_hidden_cell_metadata(
        result.cells, _shown_metadata(merged_text, fmt), base_nb, our_nb, their_nb
    )
    _take_their_outputs(result.cells, their_nb)
    metadata, conflicts = three_way(base_nb.metadata, our_nb.metadata, their_nb.metadata)
    result.metadata = as_node(metadata)
    write_notebook(result, ours)
    return MergeResult(cells_conflict, conflicts)


def _cells_text(nb: NotebookNode, fmt: str) -> str:
    """The cells as a script with no header: notebook metadata is merged key by key
    (``three_way``), so a header edited on both sides does not become a cell."""
    import jupytext  # 150 ms to import: only when a merge runs

    bare = copy.deepcopy(nb)
    bare.metadata = {"jupytext": {"notebook_metadata_filter": "-all"}}
    text: str = jupytext.writes(bare, fmt)
    return text


_MISSING: Any = object()


def three_way(
    base: Mapping[str, Any], ours: Mapping[str, Any], theirs: Mapping[str, Any], where: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """Merge metadata key by key: a side that changed a key wins; both changed it alike, or
    nested keys apart, merge; both changed it differently is a conflict (ours is kept).
    The merged dict, and the dotted names of the conflicting keys."""
    merged: dict[str, Any] = {}
    conflicts: list[str] = []
    for key in dict.fromkeys([*ours, *theirs, *base]):
        b, o, t = (side.get(key, _MISSING) for side in (base, ours, theirs))
        name = f"{where}.{key}" if where else key
        value = o
        if o != t and o == b:
            value = t
        elif o != t and t != b:
            if isinstance(o, Mapping) and isinstance(t, Mapping):
                value, inner = three_way(b if isinstance(b, Mapping) else {}, o, t, name)
                conflicts += inner
            elif name in _DERIVED:
                value = _MISSING
            else:
                conflicts.append(name)
        if value is not _MISSING:
            merged[key] = value
    return merged, conflicts


def _shown_metadata(text: str, fmt: str) -> list[dict[str, Any]]:
    """The metadata of each cell as the merged script carries it."""
    import jupytext

    return [dict(cell.metadata) for cell in jupytext.reads(text, fmt).cells]


def _merge_hidden_cell_metadata(
    cells: list[NotebookNode], shown: list[dict[str, Any]], *sides: NotebookNode
) -> None:
    """Cell metadata the script does not show (``collapsed``, ``ExecuteTime``) merged three
    ways, cells matched by type and source; what the merged script shows wins. Ours is
    kept when both sides changed such a key: it is view state, not worth a conflict."""
    base, ours, theirs = (
        {(cell.cell_type, cell.source): cell.metadata for cell in side.cells} for side in sides
    )
    for cell, visible in zip(cells, shown, strict=True):
        key = (cell.cell_type, cell.source)
        merged, _ = three_way(base.get(key, {}), ours.get(key, {}), theirs.get(key, {}))
        cell.metadata = as_node({**merged, **visible})


def _take_their_outputs(cells: list[NotebookNode], theirs: NotebookNode) -> None:
    """A cell only they ran or changed has no outputs from our side: take theirs (the
    outputs only: its metadata came from the merge)."""
    by_source = {(c.cell_type, c.source): c for c in theirs.cells if c.cell_type == "code"}
    for cell in cells:
        if cell.cell_type == "code" and not cell.outputs and cell.execution_count is None:
            their_cell = by_source.get((cell.cell_type, cell.source))
            if their_cell is not None:
                cell.outputs = as_node(list(their_cell.outputs))
                cell.execution_count = their_cell.execution_count
