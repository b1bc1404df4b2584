"""``nbharness sync``: bring every notebook and its script twin into agreement."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jupytext

from ..config.project import Project
from ..errors import NbHarnessError, display_path
from ..notebook.io import nbharness_metadata, read_notebook, write_atomically
from ..report import render
from ..vcs.pairing import (
    SyncConflict,
    conflict_diffs,
    merged_cells,
    pairing_of,
    plan,
    record,
    script_text,
    strip_outputs,
    synced_text_from_git,
    write_notebook_json,
)
from .check import paired_notebooks


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sync", help="sync notebooks with their script twins")
    parser.add_argument(
        "--prefer",
        choices=["notebook", "script"],
        help="on a both-sides change, keep this side (the other is rewritten)",
    )
    parser.add_argument(
        "--strip-outputs",
        action="store_true",
        help="also remove outputs and execution counts from the notebooks "
        "(or set [tool.nbharness] strip_outputs = true)",
    )
    parser.add_argument(
        "--exit-non-zero-on-write",
        action="store_true",
        help="exit 1 when a file was written (for pre-commit: then git add them)",
    )
    parser.add_argument("paths", nargs="*", type=Path, default=[Path(".")])
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    failed = 0
    written: list[str] = []
    for given in args.paths:
        if not given.exists():
            print(f"{display_path(given)}: no such file or folder", file=sys.stderr)
            failed += 1
    for path in paired_notebooks([p for p in args.paths if p.exists()]):
        try:
            for line in sync_one(path, args.prefer, args.strip_outputs):
                print(line)
                written.append(line.removeprefix("wrote "))
        except NbHarnessError as exc:
            print(render(exc), file=sys.stderr)
            failed += 1
        except Exception as exc:  # jupytext and nbformat fail in many ways on odd notebooks
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            print(f"{display_path(path)}: cannot be paired: {reason}", file=sys.stderr)
            failed += 1
    if written and args.exit_non_zero_on_write:
        print(f"then: git add {' '.join(written)}", file=sys.stderr)
    return 1 if failed or (written and args.exit_non_zero_on_write) else 0


def sync_one(path: Path, prefer: str | None, strip: bool = False) -> list[str]:
    """Sync one notebook with its twin; the lines to print (what was written)."""
    project = Project.for_path(path)
    notebook_bytes = path.read_bytes()
    nb, _ = read_notebook(path)
    if json.loads(notebook_bytes).get("nbformat", 4) < 4:
        raise NbHarnessError(
            f"{display_path(path)} is nbformat {json.loads(notebook_bytes)['nbformat']}: open and "
            "save it with Jupyter (or `jupyter nbconvert --to notebook --inplace`) before pairing"
        )
    table = dict(project.table)
    pairing = pairing_of(project.root, table, nb)
    if pairing is None:
        return []
    script = pairing.twin(path)
    script_bytes = script.read_bytes() if script.exists() else None
    step = plan(nb, script, pairing.fmt, prefer)
    # Outputs are not in the script, so stripping them never changes the plan.
    stripped = (strip or table.get("strip_outputs") is True) and strip_outputs(nb)
    if step.action == "none" and not stripped:
        return []
    if step.action == "conflict":
        assert step.script_now is not None
        base = synced_text_from_git(script, str(nbharness_metadata(nb).get("synced", "")))
        diffs = conflict_diffs(base, step.notebook_text, step.script_now, script)
        raise SyncConflict(path, script, diffs)
    if step.action == "notebook":
        assert step.script_now is not None
        nb.cells = merged_cells(nb, jupytext.reads(step.script_now, pairing.fmt).cells)
    text = script_text(nb, pairing.fmt)
    record(nb, text)
    # Write only if neither file changed while we read and decided.
    unchanged_script = (script.read_bytes() if script.exists() else None) == script_bytes
    if path.read_bytes() != notebook_bytes or not unchanged_script:
        raise NbHarnessError(f"{display_path(path)} or its twin changed while syncing; run again")
    written = []
    if step.script_now != text:
        write_atomically(script, text)
        written.append(f"wrote {display_path(script)}")
    write_notebook_json(nb, path)
    written.append(f"wrote {display_path(path)}")
    return written
