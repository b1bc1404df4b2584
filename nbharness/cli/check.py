"""``nbharness check``: lints that read notebooks without running them."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.project import Project
from ..errors import InvalidNotebook, NbHarnessError, display_path
from ..notebook.io import is_python, parse_json, read_notebook, stated_language
from ..vcs.export import ExportError, project_modules, stale_modules
from ..vcs.pairing import pairing_of
from ..vcs.sync import pairing_problem
from ..verify.dataflow import dataflow_findings
from ..verify.findings import Finding, selected, unknown_codes
from ..verify.freshness import freshness_findings
from ..verify.order import order_findings
from .paths import existing, paired_notebooks

if TYPE_CHECKING:
    from nbformat import NotebookNode


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check notebooks without running them (all checks but --fresh unless some are named)",
    )
    parser.add_argument(
        "--order",
        action="store_true",
        help="stored execution counts must come from one clean top-to-bottom run",
    )
    parser.add_argument(
        "--dataflow",
        action="store_true",
        help="every name a cell reads must be defined by a cell above it",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="stored outputs must come from a recorded clean run of exactly this code",
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
    parser.add_argument(
        "--format", choices=["text", "json"], default="text", help="json: a list for tools"
    )
    for name, what in (("select", "only these rule codes"), ("ignore", "not these rule codes")):
        parser.add_argument(
            f"--{name}",
            action="append",
            default=[],
            metavar="CODES",
            help=f"{what} (comma-separated prefixes, e.g. NBH1,NBH203)",
        )
    parser.add_argument("paths", nargs="*", type=Path, default=[Path(".")])
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Checks:
    """Which checks run: all but ``fresh`` when none is named (a notebook without a
    freshness record is not wrong, only unproven)."""

    order: bool
    dataflow: bool
    fresh: bool
    export: bool
    pairing: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Checks:
        every = not (args.order or args.dataflow or args.fresh or args.export or args.pairing)
        return cls(
            order=every or args.order,
            dataflow=every or args.dataflow,
            fresh=args.fresh,
            export=every or args.export,
            pairing=every or args.pairing,
        )


def run(args: argparse.Namespace) -> int:
    checks = Checks.from_args(args)
    select = [code for value in args.select for code in value.split(",") if code]
    ignore = [code for value in args.ignore for code in value.split(",") if code]
    unknown = unknown_codes(select + ignore)
    if unknown:
        print(f"nbharness check: no rule code starts with {unknown[0]!r}", file=sys.stderr)
        return 2
    paths, failed = existing(args.paths)
    listed: list[dict[str, object]] = []
    for path in paired_notebooks(paths):
        shown = display_path(path)
        try:
            findings, problems = problems_of(path, checks)
        except InvalidNotebook as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        findings = selected(findings, select, ignore)
        if args.format == "json":
            listed += [finding.as_json(shown) for finding in findings]
            listed += [{"path": shown, "cell": None, "code": None, "message": p} for p in problems]
        for line in [finding.line(shown) for finding in findings] if args.format == "text" else []:
            print(line)
        for problem in problems if args.format == "text" else []:
            print(f"{shown}: {problem}")
        failed += bool(findings or problems)
    if args.format == "json":
        print(json.dumps(listed, indent=1))
    return 1 if failed else 0


def problems_of(path: Path, checks: Checks) -> tuple[list[Finding], list[str]]:
    """What the checks asked for find in one notebook: coded findings, and the export and
    pairing problems; ``InvalidNotebook`` when the file is not one (read once, however
    many checks run)."""
    nb = read_notebook(path)[0] if checks.export or checks.pairing else None
    stored = stored_notebook(path) if checks.order or checks.dataflow or checks.fresh else {}
    cells = stored.get("cells", [])
    if not isinstance(stored.get("metadata"), dict):  # null: the order check does not mind
        stored = {**stored, "metadata": {}}
    findings = order_findings(cells) if checks.order else []
    if checks.dataflow and is_python(stated_language(stored["metadata"])):
        findings += dataflow_findings(cells)
    if checks.fresh:
        findings += freshness_findings(stored, path.parent)
    problems = []
    if nb is not None and checks.export:
        problems += export_problems(path, nb)
    if nb is not None and checks.pairing:
        problems += pairing_problems(path, nb)
    return findings, problems


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


def stored_notebook(path: Path) -> dict[str, Any]:
    """The notebook as stored, read as plain JSON (a lint over 1000 notebooks must be
    quick), or ``InvalidNotebook`` when its cells are not the list the lints read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidNotebook(path, f"cannot read it: {exc}") from None
    raw = parse_json(path, text)
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat", 4), int):
        raise InvalidNotebook(path, "the JSON is not a notebook (no integer 'nbformat')")
    if raw.get("nbformat", 4) < 4:  # v3 keeps cells in worksheets: let nbformat upgrade it
        return dict(read_notebook(path)[0])
    problem = _cells_problem(raw.get("cells", []))
    if problem:
        raise InvalidNotebook(path, problem)
    return raw


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
