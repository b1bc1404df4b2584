"""Coverage of code run in notebook kernels, into the same report as the ordinary tests.

With pytest-cov's ``--cov``, each kernel starts a ``coverage`` measurement before the
first cell (same data file, sources, branch setting and configuration as pytest-cov) and
saves it after the last; pytest-cov's own combine step then merges the kernels' data
files with the tests'. IPython compiles each cell to a temporary file no report could
show, so the cells' lines are moved onto the notebook's paired script, where a cell's
lines sit under its ``# %%`` marker; without a paired script they are dropped.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..vcs.scripts import script_line

if TYPE_CHECKING:
    from nbformat import NotebookNode

#: pytest-cov's measurement settings for a kernel: ``coverage.Coverage``'s keyword
#: arguments (data_file, source, branch, config_file).
CoverageOptions = Mapping[str, Any]

#: Starts coverage in the kernel. With ``--cov=SOURCE``, the folder IPython compiles cells
#: into is measured too, so the cells' lines can be moved onto the paired script.
PROLOGUE = """\
import coverage as __nbharness_coverage_module, os as __nbharness_os
__nbharness_options = {options!r}
if __nbharness_options["source"] is not None:
    __nbharness_cells = __nbharness_os.path.dirname(get_ipython().compile.get_code_name("", "", 0))
    __nbharness_os.makedirs(__nbharness_cells, exist_ok=True)  # a folder, not a package name
    __nbharness_options["source"].append(__nbharness_cells)
    del __nbharness_cells
__nbharness_coverage = __nbharness_coverage_module.Coverage(**__nbharness_options)
__nbharness_coverage.start()
del __nbharness_coverage_module, __nbharness_os, __nbharness_options
"""
#: Saves the data, and for each file IPython compiled code to: its execution count and
#: source (to tell a notebook's cells from code run beside them, like this).
EPILOGUE = """\
__nbharness_coverage.stop(); __nbharness_coverage.save()
with open({cells!r}, "w") as __nbharness_file:
    __import__("json").dump({{
        name: [count, "".join(__import__("linecache").cache.get(name, (0, 0, []))[2])]
        for name, count in get_ipython().compile._filename_map.items()
    }}, __nbharness_file)
del __nbharness_file
"""


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Where one kernel's coverage data and its cell-file map are written."""

    data_file: Path
    cells_file: Path

    def map_cells(
        self, executed: NotebookNode, stored: NotebookNode, script: Path | None, fmt: str
    ) -> None:
        """Move the cells' measured lines onto ``script`` (or drop them without one)."""
        from coverage import CoverageData  # only with --cov, which needs it anyway

        try:
            compiled = json.loads(self.cells_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # the kernel died before saving: no data to map
        finally:
            self.cells_file.unlink(missing_ok=True)
        data = CoverageData(basename=str(self.data_file))
        data.read()
        cell_files = [name for name in data.measured_files() if name in compiled]
        lines: set[int] = set()
        arcs: set[tuple[int, int]] = set()
        for name, index in _cells_of(cell_files, compiled, executed, stored).items():
            start = None if script is None else script_line(stored, fmt, index, 1)
            if start is None:
                continue
            shift = start - 1
            lines.update(line + shift for line in data.lines(name) or [])
            arcs.update((_shifted(a, shift), _shifted(b, shift)) for a, b in data.arcs(name) or [])
        data.purge_files(cell_files)
        if script is not None and (lines or arcs):
            target = str(script.resolve())
            if data.has_arcs():
                data.add_arcs({target: arcs})
            else:
                data.add_lines({target: lines})
        data.write()


def measurement_for(options: CoverageOptions) -> tuple[Measurement, str, str]:
    """A data file of its own for one kernel, and the code that starts coverage there
    before the first cell (the prologue) and saves it after the last (the epilogue)."""
    suffix = f"nbharness.{uuid.uuid4().hex}"
    data_file = Path(f"{options['data_file']}.{suffix}")
    measurement = Measurement(data_file, data_file.with_name(data_file.name + ".cells.json"))
    prologue = PROLOGUE.format(options={**options, "data_suffix": suffix})
    epilogue = EPILOGUE.format(cells=str(measurement.cells_file))
    return measurement, prologue, epilogue


def _cells_of(
    names: list[str],
    compiled: dict[str, list[Any]],
    executed: NotebookNode,
    stored: NotebookNode,
) -> dict[str, int]:
    """Compiled file → index of the stored cell it holds.

    Code run beside the cells (the coverage set-up, the notebook fixture's questions)
    shares their execution counts, so a file is a cell's when its source is the cell's;
    failing that (a magic changes the source), when it is the only candidate of its count.
    """
    index_of = _stored_index(executed, stored)
    by_count: dict[int, list[str]] = {}
    for name in names:
        by_count.setdefault(compiled[name][0], []).append(name)
    found = {}
    for count, candidates in by_count.items():
        index = index_of.get(count)
        if index is None:
            continue
        source = stored.cells[index].source.strip()
        exact = [name for name in candidates if compiled[name][1].strip() == source]
        others = [name for name in candidates if "__nbharness" not in compiled[name][1]]
        for name in exact or (others if len(others) == 1 else []):
            found[name] = index
    return found


def _stored_index(executed: NotebookNode, stored: NotebookNode) -> dict[int, int]:
    """Execution count → index of that cell in the stored notebook (by cell id, which
    survives an injected parameters cell; by position when the notebook has no ids)."""
    ids = {cell.get("id"): index for index, cell in enumerate(stored.cells) if cell.get("id")}
    same_shape = len(executed.cells) == len(stored.cells)
    found = {}
    for position, cell in enumerate(executed.cells):
        count = cell.get("execution_count")
        index = ids.get(cell.get("id"), position if same_shape else None)
        if isinstance(count, int) and index is not None:
            found[count] = index
    return found


def _shifted(line: int, shift: int) -> int:
    """An arc end moved down by ``shift`` lines (negative ends are code objects' entries)."""
    return line + shift if line > 0 else line - shift
