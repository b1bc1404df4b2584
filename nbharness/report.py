"""Turn an ``NbHarnessError`` into the text a user acts on.

The first line is always the one-line summary (pytest puts it in the short test
summary and in JUnit's ``message``); the rest depends on ``--tb``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .errors import CellError, CellProblem, KernelDied, NbHarnessError
from .notebook.cellmarks import is_injected, user_index
from .text import strip_ansi as strip_ansi  # cli/textconv.py imports it from here

if TYPE_CHECKING:
    from nbformat import NotebookNode

#: A traceback entry for a frame of the kernel's own machinery, not the user's code.
_KERNEL_FRAME = re.compile(r"^File [^\n]*[/\\](ipykernel|IPython|ipython_genutils|traitlets)[/\\]")
#: How IPython names a cell's frame in a traceback, and how a located report names it.
_CELL_FRAME = re.compile(r"Cell In\[(\d+)\], line ")
_FAILING_FRAME = r"(?:Cell In\[{count}\]|\(In \[{count}\]\)), line (\d+)"
#: Characters of a traceback or a kernel's last words the report shows: the first and
#: the last half (a huge exception message would otherwise print whole).
SECTION_LIMIT = 100_000


class _Writer(Protocol):
    def line(self, s: str = "", **markup: bool) -> None: ...


def dropped_line(size: int) -> str:
    """The line that stands in for ``size`` characters of dropped output."""
    return f"\n... [nbharness: {human_size(size)} of output dropped] ...\n"


def human_size(size: float) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def bounded(text: str, limit: int = SECTION_LIMIT) -> str:
    """``text``, or its head and tail around a line saying how much was left out."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + dropped_line(len(text) - 2 * half) + text[-half:]


def render(error: NbHarnessError, style: str = "long", fulltrace: bool = False) -> str:
    """The whole report for ``error`` in pytest's ``--tb`` ``style``."""
    lines = [bounded(error.summary)]
    if isinstance(error, CellProblem):
        if error.script_location:
            lines.append(f"In the paired script: {error.script_location}")
        lines += ["", f"Source of {error.where}:"]
        lines += numbered_source(error.source, failing_line(error))
        if isinstance(error, CellError) and error.traceback and style not in ("short", "line"):
            lines += ["", "Traceback:" if fulltrace else "Traceback (kernel frames trimmed):"]
            traceback = clean_traceback(error.traceback, keep_kernel_frames=fulltrace)
            lines += bounded("\n".join(traceback)).splitlines()
        if isinstance(error, KernelDied) and error.stderr:
            stderr = "\n".join(error.stderr.splitlines()[-20:])
            lines += ["", "Kernel stderr (last lines):", *bounded(stderr).splitlines()]
    details = error.details()
    if details and style != "line":
        lines += ["", *details]
    return "\n".join(lines)


def failing_line(error: CellProblem) -> int | None:
    """The 1-based line of the cell the traceback points at, if it names one."""
    if not isinstance(error, CellError) or error.execution_count is None:
        return None
    text = strip_ansi("\n".join(error.traceback))
    hits = re.findall(_FAILING_FRAME.format(count=error.execution_count), text)
    if not hits:
        return None
    # IPython drops a cell's leading blank lines before numbering the rest.
    lines = error.source.splitlines()
    blank = next((n for n, line in enumerate(lines) if line.strip()), len(lines))
    return int(hits[-1]) + blank


def locate(
    error: NbHarnessError,
    executed: NotebookNode,
    stored: NotebookNode,
    script: Path | None = None,
    fmt: str = "",
) -> NbHarnessError:
    """``error`` as the user's notebook has it, not as the run numbered it.

    Cells added to the run are named for what they are, the others counted without them;
    traceback frames of cells read "cell 4 (In [3])" like the summary, and a failing line
    is also shown in the paired ``script`` (jupytext format ``fmt``), when there is one.
    """
    if not isinstance(error, CellProblem) or error.index >= len(executed.cells):
        return error
    cells = executed.cells
    if isinstance(error, CellError):
        error = replace(error, traceback=_named_frames(error.traceback, cells))
    if is_injected(cells[error.index]):
        return replace(error, injected=injected_name(cells, error.index))
    error = replace(error, index=user_index(cells, error.index))
    line = _script_line(error, stored, script, fmt)
    return replace(error, script=script, script_line=line) if line else error


def injected_name(cells: list[NotebookNode], index: int) -> str:
    """How a report names a cell that was added to the run, not written by the user."""
    if "injected-parameters" in cells[index].get("metadata", {}).get("tags", []):
        return "the injected parameters cell"
    before = user_index(cells, index)
    return f"code run after cell {before} (nbmake's mock or post_cell_execute metadata)"


def _named_frames(traceback: list[str], cells: list[NotebookNode]) -> list[str]:
    """IPython's "Cell In[3], line 2" as "cell 4 (In [3]), line 2": the cell's number in
    the user's notebook, which IPython's execution counts are not."""
    names = {}
    for index, cell in enumerate(cells):
        count = cell.get("execution_count")
        if isinstance(count, int):
            place = (
                injected_name(cells, index)
                if is_injected(cell)
                else f"cell {user_index(cells, index) + 1}"
            )
            names[str(count)] = f"{place} (In [{count}]), line "

    def named(match: re.Match[str]) -> str:
        return names.get(match.group(1), match.group(0))

    # Colour codes split IPython's frame names; the report shows the text without them.
    return [_CELL_FRAME.sub(named, strip_ansi(entry)) for entry in traceback]


def _script_line(error: CellProblem, stored: NotebookNode, script: Path | None, fmt: str) -> int:
    """The failing line's number in the paired script; 0 without one."""
    if script is None:
        return 0
    from .vcs.scripts import script_line

    return script_line(stored, fmt, error.index, failing_line(error) or 1) or 0


def numbered_source(source: str, arrow_at: int | None) -> list[str]:
    rows = source.splitlines() or [""]
    width = len(str(len(rows)))
    return [
        f"{'-->' if n == arrow_at else '   '} {n:>{width}} | {text}".rstrip()
        for n, text in enumerate(rows, start=1)
    ]


def clean_traceback(entries: list[str], keep_kernel_frames: bool = False) -> list[str]:
    """IPython's traceback without colour codes and, unless asked, without kernel frames."""
    kept = [strip_ansi(entry).rstrip("\n") for entry in entries]
    if not keep_kernel_frames:
        kept = [entry for entry in kept if not _KERNEL_FRAME.match(entry)]
    return [line for entry in kept for line in entry.splitlines()]


@dataclass(frozen=True)
class CrashLine:
    """The one line pytest shows for ``--tb=line`` and in JUnit's ``message``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class FailureRepr:
    """What ``repr_failure`` returns: our text, plus the crash line pytest looks for."""

    text: str
    reprcrash: CrashLine

    def toterminal(self, tw: _Writer) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text
