"""Cell markers other tools taught people, so a team switches without retagging.

nbclient's tags are the ones the executor acts on; nbval's tags and first-word comments
mean the same and are translated to them before a run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from nbformat import NotebookNode

from .notebook import RAISES_TAG, SKIP_TAG, cell_tags


class Marker:
    """One meaning, spelled as tags and as comment keywords (``# NBVAL_SKIP``)."""

    def __init__(self, tags: set[str], comments: set[str]) -> None:
        self.tags = frozenset(tags)
        self.comments = frozenset(comments)

    def on(self, cell: Mapping[str, Any]) -> bool:
        if self.tags & cell_tags(cell):
            return True
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        # As nbval reads them: a comment line that is the marker and nothing else.
        return any(
            line.strip().startswith("#") and line.strip().lstrip("#").strip() in self.comments
            for line in text.splitlines()
        )


SKIP = Marker({SKIP_TAG, "nbval-skip"}, {"NBVAL_SKIP"})
RAISES = Marker({RAISES_TAG, "nbval-raises-exception"}, {"NBVAL_RAISES_EXCEPTION"})
IGNORE_OUTPUT = Marker(
    {"nbharness-ignore-output", "nbval-ignore-output"},
    {"NBVAL_IGNORE_OUTPUT", "PYTEST_VALIDATE_IGNORE_OUTPUT"},
)


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
