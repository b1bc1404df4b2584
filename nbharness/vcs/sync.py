"""Sync one notebook with its script twin: decide from content (``pairing.plan``), write
what changed, and never overwrite an edit that landed while we worked."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import NbHarnessError, display_path
from ..notebook.io import nbharness_metadata, read_notebook, write_atomically, write_notebook
from .git import synced_text_from_git
from .pairing import (
    NotATwin,
    SyncConflict,
    conflict_diffs,
    pairing_of,
    plan,
    read_script,
    rebuilt,
    record,
    script_text,
    strip_outputs,
    twin_name,
)


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
    step = plan(nb, read_script(script), pairing.fmt, twin, prefer)
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
