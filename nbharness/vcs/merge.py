"""A git merge driver for notebooks: merge their text forms, rebuild the notebook.

git merges text line by line and notebooks are JSON, so a plain merge of two edits to
one notebook conflicts on brace lines and outputs. Here the three versions are written
as scripts, merged by ``git merge-file`` like any text, and the merged script becomes
the notebook again. Cells neither side changed keep their outputs (from our side, or
theirs when only they ran it); a conflict leaves git's markers inside the cell, in a
notebook that still opens, and the driver exits non-zero so git reports the conflict.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from ..notebook.io import read_notebook, write_atomically
from .pairing import DEFAULT_FORMAT, merged_cells, script_text


def merge(base: Path, ours: Path, theirs: Path, fmt: str = DEFAULT_FORMAT) -> bool:
    """Merge ``theirs`` into ``ours`` (rewritten in place); whether it merged cleanly."""
    import jupytext

    notebooks = [read_notebook(path)[0] for path in (base, ours, theirs)]
    texts = [script_text(nb, fmt) for nb in notebooks]
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, text in zip(("base", "ours", "theirs"), texts, strict=True):
            file = Path(tmp) / f"{name}.txt"
            file.write_text(text, encoding="utf-8")
            files.append(str(file))
        done = subprocess.run(
            [
                "git",
                "merge-file",
                "-p",
                "-L",
                "ours",
                "-L",
                "base",
                "-L",
                "theirs",
                files[1],
                files[0],
                files[2],
            ],
            capture_output=True,
            text=True,
        )
    if done.returncode < 0 or done.returncode > 127:
        raise RuntimeError(f"git merge-file failed: {done.stderr.strip()}")
    merged_text = done.stdout
    _, our_nb, their_nb = notebooks
    cells = merged_cells(our_nb, jupytext.reads(merged_text, fmt).cells)
    _take_their_outputs(cells, their_nb)
    result = our_nb
    result.cells = cells
    write_atomically(ours, nbformat.writes(result) + "\n")
    return done.returncode == 0


def _take_their_outputs(cells: list[NotebookNode], theirs: NotebookNode) -> None:
    """A cell only they changed has no outputs from our side: take theirs."""
    by_source = {(c.cell_type, c.source): c for c in theirs.cells if c.cell_type == "code"}
    for index, cell in enumerate(cells):
        if cell.cell_type == "code" and not cell.outputs and cell.execution_count is None:
            their_cell = by_source.get((cell.cell_type, cell.source))
            if their_cell is not None:
                cells[index] = nbformat.from_dict(dict(their_cell))
