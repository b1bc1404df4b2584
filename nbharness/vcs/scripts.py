"""A notebook as its script, and a notebook rebuilt from one.

Pure transforms between a notebook and its jupytext text: render the inputs
(``script_text``), rebuild cells from edited text keeping what the text does not show
(``rebuilt``), find a cell's line in the script (``script_line``), strip outputs.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..notebook.io import as_node

if TYPE_CHECKING:
    from nbformat import NotebookNode


#: The script header must not change when only jupytext's version does.
_NO_VERSION = "-jupytext.text_representation.jupytext_version"


def script_text(nb: NotebookNode, fmt: str) -> str:
    """The notebook's inputs as a script, with no version stamp and no sync record."""
    import jupytext  # 150 ms to import: only when pairing is used

    nb = copy.deepcopy(nb)
    nb.metadata.pop("nbharness", None)
    nb.metadata["jupytext"] = {"notebook_metadata_filter": _NO_VERSION}
    text: str = jupytext.writes(nb, fmt)
    return text


def written_by_jupytext(text: str, fmt: str) -> bool:
    """Whether ``text`` has the header every twin gets (``script_text`` always writes one):
    a hand-written module that happens to sit where the twin belongs has none. jupytext
    fills in ``jupytext`` metadata for any text, but a format version, or metadata of the
    notebook's own (its kernelspec), only come from a header."""
    import jupytext

    try:
        metadata = jupytext.reads(text, fmt).metadata
    except Exception:  # jupytext raises many kinds on odd text: not one of its scripts
        return False
    own = (metadata.get("jupytext") or {}).get("text_representation") or {}
    return "format_version" in own or any(key != "jupytext" for key in metadata)


def digest(text: str) -> str:
    """The hash a sync record keeps of a script's text."""
    return hashlib.sha256(text.encode()).hexdigest()


def read_script(script: Path) -> str | None:
    """The twin's text, or ``None`` when there is none yet."""
    return script.read_text(encoding="utf-8") if script.exists() else None


def rebuilt(old: NotebookNode, text: str, fmt: str) -> NotebookNode:
    """``old`` rebuilt from the script ``text``: its cells (see ``merged_cells``), and the
    metadata the script carries (tags, the kernelspec in its header). What the script
    does not show (outputs, ``ExecuteTime``, the sync record) is kept from ``old``."""
    import jupytext  # 150 ms to import: only when pairing is used

    shown = jupytext.reads(script_text(old, fmt), fmt)
    from_text = jupytext.reads(text, fmt)
    nb = copy.deepcopy(old)
    nb.cells = merged_cells(old, from_text.cells, [cell.metadata for cell in shown.cells])
    nb.metadata = text_metadata(
        old.metadata, _without_jupytext(shown.metadata), _without_jupytext(from_text.metadata)
    )
    return nb


def _without_jupytext(metadata: dict[str, Any]) -> dict[str, Any]:
    """The header's ``jupytext`` entry is written by ``script_text``, never by a user."""
    return {key: value for key, value in metadata.items() if key != "jupytext"}


def text_metadata(
    old: dict[str, Any], shown: dict[str, Any], text: dict[str, Any]
) -> dict[str, Any]:
    """The metadata a script gives, plus what the script never showed of ``old``: jupytext
    hides keys such as ``ExecuteTime``, and ``script_text`` hides the sync record."""
    hidden = {key: value for key, value in old.items() if key not in shown}
    merged: dict[str, Any] = as_node(copy.deepcopy({**hidden, **text}))
    return merged


def merged_cells(
    old: NotebookNode,
    new_cells: list[NotebookNode],
    shown: list[dict[str, Any]],
) -> list[NotebookNode]:
    """The script's cells, each keeping the old cell's outputs, count and id when its
    source and type did not change (moved cells too); an edited or new cell starts with no
    outputs. Metadata comes from the script, plus what it does not show of the old cell
    (``shown[i]`` is what old cell ``i`` shows in the script). An edited markdown cell keeps
    the attachments it still refers to."""
    if len(shown) != len(old.cells):  # a format that does not keep cells apart: all shown
        shown = [dict(cell.metadata) for cell in old.cells]
    old_keys = [_key(cell) for cell in old.cells]
    new_keys = [_key(cell) for cell in new_cells]
    cells: list[NotebookNode | None] = [None] * len(new_cells)
    unused = list(range(len(old.cells)))

    def kept(a: int, b: int) -> NotebookNode:
        unused.remove(a)
        cell: NotebookNode = copy.deepcopy(old.cells[a])
        cell.metadata = text_metadata(cell.metadata, shown[a], new_cells[b].metadata)
        return cell

    matcher = difflib.SequenceMatcher(a=old_keys, b=new_keys, autojunk=False)
    for tag, a0, a1, b0, _ in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(a1 - a0):
                cells[b0 + offset] = kept(a0 + offset, b0 + offset)
    attachments = {
        name: data for cell in old.cells for name, data in (cell.get("attachments") or {}).items()
    }
    with_ids = (old.nbformat, old.nbformat_minor) >= (4, 5)
    for index, cell in enumerate(new_cells):
        if cells[index] is not None:
            continue
        moved = next((i for i in unused if old_keys[i] == new_keys[index]), None)
        if moved is not None:  # the same cell, moved: it keeps everything
            cells[index] = kept(moved, index)
            continue
        cells[index] = _fresh(cell, attachments, with_ids)
    return [cell for cell in cells if cell is not None]


def _key(cell: NotebookNode) -> tuple[str, str]:
    return (str(cell.cell_type), str(cell.source))


def _fresh(cell: NotebookNode, attachments: dict[str, object], with_ids: bool) -> NotebookNode:
    cell = copy.deepcopy(cell)
    if not with_ids:
        cell.pop("id", None)  # nbformat before 4.5 has no cell ids: one would be invalid
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    elif cell.cell_type == "markdown":
        kept = {n: d for n, d in attachments.items() if f"attachment:{n}" in cell.source}
        if kept:
            cell["attachments"] = kept
    return cell


def script_line(nb: NotebookNode, fmt: str, index: int, line: int) -> int | None:
    """The script line holding ``line`` (1-based) of cell ``index``, or ``None``.

    Cells are found in the script as jupytext writes it: after the header, each cell
    starts at its ``# %%`` marker (percent format), or where its source first appears.
    """
    lines = script_text(nb, fmt).splitlines()
    markers = [n for n, text in enumerate(lines) if text.startswith("# %%")]
    if fmt.endswith(":percent") and len(markers) == len(nb.cells):
        return markers[index] + 1 + line
    first = nb.cells[index].source.splitlines()[:1]
    for number, text in enumerate(lines):
        if first and text == first[0]:
            return number + line
    return None


def strip_outputs(nb: NotebookNode) -> bool:
    """Remove outputs and execution counts; whether there were any."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count = [], None
            changed = True
    return changed
