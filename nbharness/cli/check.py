"""``nbharness check``: lints that read notebooks without running them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from ..config.project import Project
from ..errors import InvalidNotebook, NbHarnessError, display_path
from ..notebook.io import parse_json, read_notebook
from ..vcs.export import ExportError, project_modules, stale_modules
from ..vcs.pairing import pairing_of
from ..vcs.sync import pairing_problem
from ..verify.order import order_problems
from .paths import existing, paired_notebooks


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check", help="check notebooks without running them (all checks unless some are named)"
    )
    parser.add_argument(
        "--order",
        action="store_true",
        help="stored execution counts must come from one clean top-to-bottom run",
    )
    parser.add_argument(
        "--pairing",
        action="store_true",
        help="every paired notebook has its script twin, in sync",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="modules exported from notebooks must exist and be what export would write",
    )
    parser.add_argument("paths", nargs="*", type=Path, default=[Path(".")])
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    every = not (args.order or args.export or args.pairing)  # none named: all of them
    paths, failed = existing(args.paths)
    for path in paired_notebooks(paths):
        shown = display_path(path)
        try:
            problems = problems_of(
                path, every or args.order, every or args.export, every or args.pairing
            )
        except InvalidNotebook as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        for problem in problems:
            print(f"{shown}: {problem}")
        failed += bool(problems)
    return 1 if failed else 0


def problems_of(path: Path, order: bool, export: bool, pairing: bool) -> list[str]:
    """What the checks asked for find in one notebook; ``InvalidNotebook`` when the file is
    not one (read once, however many checks run)."""
    nb = read_notebook(path)[0] if export or pairing else None
    problems = order_problems(stored_cells(path)) if order else []
    if nb is not None and export:
        problems += export_problems(path, nb)
    if nb is not None and pairing:
        problems += pairing_problems(path, nb)
    return problems


def export_problems(path: Path, nb: NotebookNode) -> list[str]:
    try:
        return stale_modules(project_modules(Project.for_path(path), path, nb))
    except ExportError as exc:
        return [exc.reason]  # the notebook is named by the caller, as the user typed it
    except NbHarnessError as exc:
        return [str(exc)]


def pairing_problems(path: Path, nb: NotebookNode) -> list[str]:
    try:
        project = Project.for_path(path)
        pairing = pairing_of(project.root, dict(project.table), nb)
        problem = pairing_problem(nb, path, pairing) if pairing else None
    except NbHarnessError as exc:
        return [str(exc)]
    except Exception as exc:  # jupytext and nbformat fail in many ways on odd notebooks
        return [f"cannot be paired: {type(exc).__name__}: {exc}".splitlines()[0]]
    return [problem] if problem else []


def stored_cells(path: Path) -> list[dict[str, Any]]:
    """The cells as stored, read as plain JSON (a lint over 1000 notebooks must be quick),
    or ``InvalidNotebook`` when they are not the list of cells the order check reads."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidNotebook(path, f"cannot read it: {exc}") from None
    raw = parse_json(path, text)
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat", 4), int):
        raise InvalidNotebook(path, "the JSON is not a notebook (no integer 'nbformat')")
    if raw.get("nbformat", 4) < 4:  # v3 keeps cells in worksheets: let nbformat upgrade it
        return list(read_notebook(path)[0].cells)
    cells = raw.get("cells", [])
    problem = _cells_problem(cells)
    if problem:
        raise InvalidNotebook(path, problem)
    return list(cells)


def _cells_problem(cells: object) -> str | None:
    """Why ``cells`` is not a list of cells as the order check reads them, or ``None``."""
    if not isinstance(cells, list):
        return f"'cells' is not a list but {type(cells).__name__}"
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            return f"cell {number} is not an object but {type(cell).__name__}"
        source, outputs = cell.get("source", ""), cell.get("outputs") or []
        if not isinstance(source, (str, list)):
            return f"cell {number}: 'source' is not text but {type(source).__name__}"
        if not isinstance(cell.get("metadata", {}), dict):
            return f"cell {number}: 'metadata' is not an object"
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            return f"cell {number}: 'outputs' is not a list of objects"
    return None
