"""Sync a notebook with its script twin: every notebook has a plain-text twin (a jupytext
script) kept in agreement with it, and an edit that lands while we work is never lost.

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

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import NbHarnessError, display_path
from ..notebook.io import nbharness_metadata, read_notebook, write_atomically, write_notebook
from .git import synced_text_from_git
from .pairing import Pairing, pairing_of, twin_name
from .scripts import (
    digest,
    read_script,
    rebuilt,
    script_text,
    strip_outputs,
    written_by_jupytext,
)

if TYPE_CHECKING:
    from nbformat import NotebookNode


class SyncConflict(NbHarnessError):
    """Both sides changed since they were last synced."""

    def __init__(self, notebook: Path, script: Path, diffs: list[str]) -> None:
        super().__init__(notebook, script, diffs)
        self.notebook, self.script, self.diffs = notebook, script, diffs

    @property
    def summary(self) -> str:
        return (
            f"{display_path(self.notebook)} and {display_path(self.script)} both changed "
            "since they were last synced; nothing was written"
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


class NotATwin(NbHarnessError):
    """The file where the notebook's twin belongs was never that notebook's twin."""

    def __init__(self, notebook: Path, script: Path, reason: str) -> None:
        super().__init__(notebook, script, reason)
        self.notebook, self.script, self.reason = notebook, script, reason

    @property
    def summary(self) -> str:
        shown = display_path(self.script)
        return (
            f"{shown} is not the twin of {display_path(self.notebook)} ({self.reason}); "
            f"nothing was written: rename the notebook, or move {shown} away and sync again"
        )


#: What sync does for one pair: nothing; only refresh the record; rewrite the script from
#: the notebook; rebuild the notebook from the script; or refuse (both changed, or the
#: file in the twin's place is not its twin).
Action = Literal["none", "record", "script", "notebook", "conflict", "foreign"]


@dataclass
class Decision:
    """What sync will do for one pair, with the texts it decided from (and, for
    ``foreign``, why the file is not the twin)."""

    action: Action
    notebook_text: str
    script_now: str | None
    why_foreign: str = ""


def decide(
    nb: NotebookNode, script_now: str | None, fmt: str, twin: str, prefer: str | None = None
) -> Decision:
    """Decide from content: the notebook rendered as a script, the script's text (``None``
    when there is no script; ``twin`` is its name as the record keeps it) and the record
    of the last synced text."""
    rendered = script_text(nb, fmt)
    if script_now is None:
        return Decision("script", rendered, None)
    metadata = nbharness_metadata(nb)
    record = metadata.get("synced")
    tied = metadata.get("twin", twin) == twin  # a record from before twins were named: tied
    if script_now == rendered:
        same = record == digest(script_now) and tied  # an older record is not rewritten
        return Decision("none" if same else "record", rendered, script_now)
    if not written_by_jupytext(script_now, fmt):
        return Decision("foreign", rendered, script_now, "it has no jupytext header")
    if not tied and record != digest(script_now):
        why = f"the notebook was last synced with {metadata['twin']}"
        return Decision("foreign", rendered, script_now, why)
    if prefer == "notebook":
        return Decision("script", rendered, script_now)  # the notebook wins: rewrite the script
    if prefer == "script":
        return Decision("notebook", rendered, script_now)  # the script wins: rebuild the notebook
    if record == digest(script_now):
        return Decision("script", rendered, script_now)  # only the notebook changed
    if record == digest(rendered):
        return Decision("notebook", rendered, script_now)  # only the script changed
    return Decision("conflict", rendered, script_now)


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


def pairing_problem(nb: NotebookNode, notebook: Path, pairing: Pairing) -> str | None:
    """What ``check`` says about a pair: no twin, or out of sync; ``None`` when in sync."""
    script = pairing.twin(notebook)
    step = decide(nb, read_script(script), pairing.fmt, twin_name(notebook, script))
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


def sync_one(
    path: Path, root: Path, table: dict[str, object], prefer: str | None, strip: bool = False
) -> list[Path]:
    """Sync the notebook ``path`` (of the project at ``root``, whose ``[tool.nbharness]``
    is ``table``) with its twin; the files written."""
    notebook_bytes = path.read_bytes()
    nb, _ = read_notebook(path)
    stored_version = json.loads(notebook_bytes).get("nbformat", 4)  # before any upgrade
    if stored_version < 4:
        raise NbHarnessError(
            f"{display_path(path)} is nbformat {stored_version}: open and "
            "save it with Jupyter (or `jupyter nbconvert --to notebook --inplace`) before pairing"
        )
    pairing = pairing_of(root, table, nb)
    if pairing is None:
        return []
    script = pairing.twin(path)
    script_bytes = script.read_bytes() if script.exists() else None
    twin = twin_name(path, script)
    step = decide(nb, read_script(script), pairing.fmt, twin, prefer)
    # Outputs are not in the script, so stripping them never changes the plan.
    stripped = (strip or table.get("strip_outputs") is True) and strip_outputs(nb)
    if step.action == "none" and not stripped:
        return []
    if step.action == "foreign":
        raise NotATwin(path, script, step.why_foreign)
    if step.action == "conflict":
        assert step.script_now is not None
        base = synced_text_from_git(script, str(nbharness_metadata(nb).get("synced", "")))
        diffs = conflict_diffs(base, step.notebook_text, step.script_now, script)
        raise SyncConflict(path, script, diffs)
    if step.action == "notebook":
        assert step.script_now is not None
        nb = rebuilt(nb, step.script_now, pairing.fmt)
    text = script_text(nb, pairing.fmt)
    record(nb, text, twin)
    guard = _Unchanged({path: notebook_bytes, script: script_bytes})
    written = []
    if step.script_now != text:
        write_atomically(script, text, guard.check)
        guard.expect(script, text.encode())
        written.append(script)
    write_notebook(nb, path, guard.check)
    written.append(path)
    return written


class _Unchanged:
    """Files as sync read them (``None``: absent). ``check`` runs right before each rename,
    once the new text is on disk: an edit saved at any moment until then is never lost."""

    def __init__(self, files: dict[Path, bytes | None]) -> None:
        self.files = files

    def expect(self, path: Path, content: bytes) -> None:
        self.files[path] = content

    def check(self) -> None:
        for path, content in self.files.items():
            if (path.read_bytes() if path.exists() else None) != content:
                raise NbHarnessError(f"{display_path(path)} changed while syncing; run again")
