"""Paired scripts: every notebook has a plain-text twin (a jupytext script) kept in sync.

Which side changed is decided from content, never from file times. The record is a hash
of the script text as last synced, with the twin's name, kept in the notebook's metadata
(``{"nbharness": {"synced": "<sha256>", "twin": "a.py"}}``), so it travels with the
notebook through git, clones and checkouts:

- the two sides agree → nothing to do;
- a file without a jupytext header, or one the record does not name whose text never
  matched the record, is not the twin (a renamed notebook next to a module): write nothing;
- the script still has the synced text → the notebook changed: rewrite the script;
- the notebook still renders to the synced text → the script changed: rebuild the
  notebook from it (cells, cell metadata, header), keeping the outputs of cells whose
  source did not change and the metadata the script does not show;
- both changed (or they differ and there is no record) → a conflict: write nothing.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nbformat
from nbformat import NotebookNode

from ..config.project import load_toml
from ..errors import NbHarnessError, display_path
from ..notebook.io import nbharness_metadata

DEFAULT_FORMAT = "py:percent"
#: The script header must not change when only jupytext's version does.
_NO_VERSION = "-jupytext.text_representation.jupytext_version"
_EXTENSIONS = {"py": ".py", "md": ".md", "myst": ".md", "Rmd": ".Rmd", "qmd": ".qmd", "R": ".R"}
_LANGUAGE_EXTENSIONS = {"python": "py", "r": "R", "julia": "jl", "bash": "sh", "c++": "cpp"}


class SyncConflict(NbHarnessError):
    """Both sides changed since they were last synced."""

    def __init__(self, notebook: Path, script: Path, diffs: list[str]) -> None:
        self.notebook, self.script, self.diffs = notebook, script, diffs
        super().__init__(
            f"{display_path(notebook)} and {display_path(script)} both changed since they "
            "were last synced; nothing was written"
        )

    def details(self) -> list[str]:
        shown_nb = display_path(self.notebook)
        return [
            *self.diffs,
            "",
            "Keep one side and sync again:",
            f"  nbharness sync --prefer notebook {shown_nb}   # the notebook's cells win",
            f"  nbharness sync --prefer script {shown_nb}     # the script's text wins",
        ]

    def __reduce__(self) -> tuple[type, tuple[Path, Path, list[str]]]:
        return (type(self), (self.notebook, self.script, self.diffs))


class NotATwin(NbHarnessError):
    """The file where the notebook's twin belongs was never that notebook's twin."""

    def __init__(self, notebook: Path, script: Path, reason: str) -> None:
        self.notebook, self.script, self.reason = notebook, script, reason
        shown = display_path(script)
        super().__init__(
            f"{shown} is not the twin of {display_path(notebook)} ({reason}); nothing was "
            f"written: rename the notebook, or move {shown} away and sync again"
        )

    def __reduce__(self) -> tuple[type, tuple[Path, Path, str]]:
        return (type(self), (self.notebook, self.script, self.reason))


def pairing_of(root: Path, table: dict[str, object], nb: NotebookNode) -> Pairing | None:
    """The pairing in effect: ``[tool.nbharness] pairing``, else the notebook's own jupytext
    ``formats``; ``None`` when neither pairs it (or ``pairing = false``)."""
    fmt = table.get("pairing")
    where = f"{root / 'pyproject.toml'}: [tool.nbharness] pairing"
    if fmt is False:
        return None
    if fmt is None:
        fmt, where = _jupytext_format(root, nb)
    if fmt is None:
        return None
    if not isinstance(fmt, str) or not re.fullmatch(r"[A-Za-z]+(:[A-Za-z]+)?", fmt):
        raise NbHarnessError(
            f"{where}: expected a jupytext format such as 'py:percent', 'md:myst' or "
            f"'auto:percent', got {fmt!r}"
        )
    scripts = table.get("scripts_dir")
    return Pairing(_for_language(fmt, nb), root, str(scripts) if scripts else None)


def _jupytext_format(root: Path, nb: NotebookNode) -> tuple[str | None, str]:
    """jupytext's own pairing, for projects that have one: the notebook's ``formats``
    metadata, else ``formats`` in ``jupytext.toml`` or ``[tool.jupytext]``."""
    sources = [
        ((nb.metadata.get("jupytext") or {}).get("formats"), "the notebook's jupytext formats")
    ]
    for config, where in (
        (load_toml(root / "jupytext.toml"), f"{root / 'jupytext.toml'}: formats"),
        (
            load_toml(root / "pyproject.toml").get("tool", {}).get("jupytext", {}),
            "[tool.jupytext] formats",
        ),
    ):
        sources.append((config.get("formats"), where))
    for formats, where in sources:
        if not formats:
            continue
        if not isinstance(formats, str) or "/" in formats:
            raise NbHarnessError(
                f"{where}: only a plain formats string such as 'ipynb,py:percent' is "
                f"understood, not {formats!r} (set [tool.nbharness] pairing instead)"
            )
        others = [f for f in formats.split(",") if f and not f.startswith("ipynb")]
        if others:
            return others[0], where
    return None, ""


def _for_language(fmt: str, nb: NotebookNode) -> str:
    """``auto`` (or ``py`` for a notebook in another language) becomes the language's
    own script extension: an R notebook pairs with ``.R``, never with a ``.py``."""
    extension, _, name = fmt.partition(":")
    language = str((nb.metadata.get("kernelspec") or {}).get("language") or "python").lower()
    if extension == "auto" or (extension == "py" and language != "python"):
        info_extension = str((nb.metadata.get("language_info") or {}).get("file_extension", ""))
        extension = info_extension.lstrip(".") or _LANGUAGE_EXTENSIONS.get(language, "txt")
    return f"{extension}:{name}" if name else extension


@dataclass(frozen=True)
class Pairing:
    """How notebooks pair: a jupytext format, and an optional folder for the scripts."""

    fmt: str = DEFAULT_FORMAT
    root: Path = Path(".")
    scripts_dir: str | None = None

    def twin(self, notebook: Path) -> Path:
        extension = _EXTENSIONS.get(self.fmt.split(":")[0], "." + self.fmt.split(":")[0])
        if self.scripts_dir is None:
            return notebook.with_suffix(extension)
        relative = notebook.resolve().relative_to(self.root.resolve())
        return (self.root / self.scripts_dir / relative).with_suffix(extension)


#: How a jupytext text notebook starts, by extension: a YAML header naming ``jupyter``.
_HEADERS = {".py": "# ---\n# jupyter:", ".md": "---\njupyter:", ".R": "# ---\n# jupyter:"}


def is_script_only_notebook(path: Path, root: Path) -> bool:
    """A jupytext text notebook with no ``.ipynb`` twin (so it runs as itself)."""
    header = _HEADERS.get(path.suffix)
    if header is None:
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            start = fh.read(len(header) + 2)
    except (OSError, UnicodeDecodeError):
        return False
    if not start.startswith(header):
        return False
    return not path.with_suffix(".ipynb").exists() and not _twin_in_tree(path, root)


def _twin_in_tree(script: Path, root: Path) -> bool:
    """With ``scripts_dir``, the notebook lives in the mirrored tree under the root."""
    from ..config.project import tool_table

    scripts_dir = tool_table(root / "pyproject.toml").get("scripts_dir")
    if not scripts_dir:
        return False
    try:
        relative = script.resolve().relative_to((root / str(scripts_dir)).resolve())
    except ValueError:
        return False
    return (root / relative).with_suffix(".ipynb").exists()


def script_text(nb: NotebookNode, fmt: str) -> str:
    """The notebook's inputs as a script, with no version stamp and no sync record."""
    import jupytext  # 150 ms to import: only when pairing is used

    nb = copy.deepcopy(nb)
    nb.metadata.pop("nbharness", None)
    nb.metadata["jupytext"] = {"notebook_metadata_filter": _NO_VERSION}
    text: str = jupytext.writes(nb, fmt)
    return text


def _written_by_jupytext(text: str, fmt: str) -> bool:
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


def twin_name(notebook: Path, script: Path) -> str:
    """The twin as the sync record names it: relative to the notebook's folder."""
    return Path(os.path.relpath(script, notebook.parent)).as_posix()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: What sync does for one pair: nothing; only refresh the record; rewrite the script from
#: the notebook; rebuild the notebook from the script; or refuse (both changed, or the
#: file in the twin's place is not its twin).
Action = Literal["none", "record", "script", "notebook", "conflict", "foreign"]


@dataclass
class Plan:
    """What sync will do for one pair, with the texts it decided from (and, for
    ``foreign``, why the file is not the twin)."""

    action: Action
    notebook_text: str
    script_now: str | None
    why_foreign: str = ""


def plan(
    nb: NotebookNode, script_now: str | None, fmt: str, twin: str, prefer: str | None = None
) -> Plan:
    """Decide from content: the notebook rendered as a script, the script's text (``None``
    when there is no script; ``twin`` is its name as the record keeps it) and the record
    of the last synced text."""
    rendered = script_text(nb, fmt)
    if script_now is None:
        return Plan("script", rendered, None)
    metadata = nbharness_metadata(nb)
    record = metadata.get("synced")
    tied = metadata.get("twin", twin) == twin  # a record from before twins were named: tied
    if script_now == rendered:
        same = record == digest(script_now) and tied  # an older record is not rewritten
        return Plan("none" if same else "record", rendered, script_now)
    if not _written_by_jupytext(script_now, fmt):
        return Plan("foreign", rendered, script_now, "it has no jupytext header")
    if not tied and record != digest(script_now):
        why = f"the notebook was last synced with {metadata['twin']}"
        return Plan("foreign", rendered, script_now, why)
    if prefer == "notebook":
        return Plan("script", rendered, script_now)  # the notebook wins: rewrite the script
    if prefer == "script":
        return Plan("notebook", rendered, script_now)  # the script wins: rebuild the notebook
    if record == digest(script_now):
        return Plan("script", rendered, script_now)  # only the notebook changed
    if record == digest(rendered):
        return Plan("notebook", rendered, script_now)  # only the script changed
    return Plan("conflict", rendered, script_now)


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
    merged: dict[str, Any] = nbformat.from_dict(copy.deepcopy({**hidden, **text}))
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


def pairing_problem(nb: NotebookNode, notebook: Path, pairing: Pairing) -> str | None:
    """What ``check`` says about a pair: no twin, or out of sync; ``None`` when in sync."""
    script = pairing.twin(notebook)
    step = plan(nb, read_script(script), pairing.fmt, twin_name(notebook, script))
    shown = display_path(notebook)
    if step.script_now is None:
        return f"no twin {display_path(script)} (run nbharness sync {shown})"
    if step.action in ("none", "record"):
        return None
    if step.action == "foreign":
        return str(NotATwin(notebook, script, step.why_foreign))
    if step.action == "conflict":
        return (
            f"{display_path(script)} and the notebook both changed (keep one side: "
            f"nbharness sync --prefer notebook|script {shown})"
        )
    return f"{display_path(script)} is out of sync (run nbharness sync {shown})"


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


def record(nb: NotebookNode, text: str, twin: str) -> None:
    """Record the text last synced, and with which twin: the record is tied to that file."""
    nb.metadata.setdefault("nbharness", {}).update(synced=digest(text), twin=twin)


def conflict_diffs(
    base: str | None, notebook_text: str, script_now: str, script: Path
) -> list[str]:
    """Each side against the last synced text when git still has it, else side by side."""
    if base is None:
        return list(
            difflib.unified_diff(
                notebook_text.splitlines(),
                script_now.splitlines(),
                "notebook (as a script)",
                str(script),
                lineterm="",
            )
        )
    return [
        *difflib.unified_diff(
            base.splitlines(), notebook_text.splitlines(), "last synced", "notebook", lineterm=""
        ),
        *difflib.unified_diff(
            base.splitlines(), script_now.splitlines(), "last synced", str(script), lineterm=""
        ),
    ]
