"""Cell markers other tools taught people, so a team switches without retagging.

nbclient's tags are the ones the executor acts on; nbval's tags and first-word comments
mean the same and are translated to them before a run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NbHarnessError
from ..text import cell_text
from .io import RAISES_TAG, SKIP_TAG, cell_tags

if TYPE_CHECKING:
    from nbformat import NotebookNode


class Marker:
    """One meaning, spelled as tags and as comment keywords (``# NBVAL_SKIP``)."""

    def __init__(self, tags: set[str], comments: set[str]) -> None:
        self.tags = frozenset(tags)
        self.comments = frozenset(comments)

    def on(self, cell: Mapping[str, Any]) -> bool:
        if self.tags & cell_tags(cell):
            return True
        text = cell_text(cell.get("source", ""))
        # As nbval reads them: a comment line that is the marker and nothing else.
        return any(
            line.strip().startswith("#") and line.strip().lstrip("#").strip() in self.comments
            for line in text.splitlines()
        )


SKIP = Marker({SKIP_TAG, "nbval-skip"}, {"NBVAL_SKIP"})
RAISES = Marker({RAISES_TAG, "nbval-raises-exception"}, {"NBVAL_RAISES_EXCEPTION"})
CHECK_OUTPUT = Marker({"nbval-check-output"}, {"NBVAL_CHECK_OUTPUT"})
IGNORE_OUTPUT = Marker(
    {"nbharness-ignore-output", "nbval-ignore-output"},
    {"NBVAL_IGNORE_OUTPUT", "PYTEST_VALIDATE_IGNORE_OUTPUT"},
)


def output_choice(cell: Mapping[str, Any]) -> bool | None:
    """Whether nbval's markers say to check the cell's outputs (``True``), to ignore them
    (``False``), or nothing. As nbval decides: comments override tags, and among each the
    last marker wins."""
    choice = None
    for tag in cell.get("metadata", {}).get("tags") or []:  # in order: the last one wins
        if tag in CHECK_OUTPUT.tags or tag in IGNORE_OUTPUT.tags:
            choice = tag in CHECK_OUTPUT.tags
    for line in cell_text(cell.get("source", "")).splitlines():
        word = line.strip().lstrip("#").strip() if line.strip().startswith("#") else ""
        if word in CHECK_OUTPUT.comments or word in IGNORE_OUTPUT.comments:
            choice = word in CHECK_OUTPUT.comments
    return choice


def with_executor_tags(nb: NotebookNode) -> NotebookNode:
    """A copy in which every skip and raises marker is also nbclient's own tag."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        for marker, tag in ((SKIP, SKIP_TAG), (RAISES, RAISES_TAG)):
            if tag not in tags and marker.on(cell):
                tags.append(tag)
    return nb


#: Marks a cell nbharness added to a run (``before=``/``after=`` code, nbmake's mocks);
#: papermill marks its parameters cell ``injected-parameters``. Neither is the user's.
INJECTED = "nbharness-injected"


def is_injected(cell: Mapping[str, Any]) -> bool:
    tags = cell_tags(cell)
    return INJECTED in tags or "injected-parameters" in tags


def user_index(cells: list[NotebookNode], index: int) -> int:
    """A cell's index in the user's notebook: injected cells before it do not count."""
    return index - sum(1 for cell in cells[:index] if is_injected(cell))


def with_injected_code(
    nb: NotebookNode,
    before: Mapping[int | str, str],
    after: Mapping[int | str, str],
) -> NotebookNode:
    """The notebook with code cells added before or after cells named by index or tag."""
    if not before and not after:
        return nb
    nb = copy.deepcopy(nb)
    keys = set(before) | set(after)
    cells = []
    for index, cell in enumerate(nb.cells):
        names: set[int | str] = {index, *cell_tags(cell)}
        cells += [_code(before[key]) for key in before if key in names]
        cells.append(cell)
        cells += [_code(after[key]) for key in after if key in names]
        keys -= names
    if keys:
        raise NbHarnessError(f"no cell has the index or tag {sorted(map(str, keys))[0]!r}")
    nb.cells = cells
    return nb


def with_nbmake_hooks(nb: NotebookNode) -> NotebookNode:
    """nbmake's cell metadata, as nbmake runs it: ``nbmake.mock`` ``{name: value}`` assigns
    the values after the cell; ``nbmake.post_cell_execute`` runs its lines after it."""
    after: dict[int | str, str] = {}
    for index, cell in enumerate(nb.cells):
        nbmake = cell.get("metadata", {}).get("nbmake") or {}
        if not isinstance(nbmake, Mapping):
            continue
        lines = [f"{name} = {value!r}" for name, value in (nbmake.get("mock") or {}).items()]
        post = nbmake.get("post_cell_execute") or []
        lines += [post] if isinstance(post, str) else [str(line) for line in post]
        if lines:
            after[index] = "\n".join(lines)
    return with_injected_code(nb, {}, after)


def _code(source: str) -> NotebookNode:
    from nbformat.v4 import new_code_cell

    cell: NotebookNode = new_code_cell(source)
    cell.metadata["tags"] = [INJECTED]
    return cell
