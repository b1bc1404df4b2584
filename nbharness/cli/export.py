"""``nbharness export``: write the cells marked for export into their modules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config.project import Project
from ..errors import NbHarnessError, display_path
from ..notebook.io import read_notebook
from ..vcs.export import claim, project_modules, unexported_names, write_module
from .paths import notebooks


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("export", help="write cells marked for export into modules")
    parser.add_argument(
        "--force", action="store_true", help="overwrite a generated module edited by hand"
    )
    parser.add_argument(
        "--exit-non-zero-on-write",
        action="store_true",
        help="exit 1 when a module was written (for pre-commit, which cannot see new files)",
    )
    parser.add_argument("paths", nargs="*", type=Path, default=[Path(".")])
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    failed = wrote = 0
    claimed: dict[Path, str] = {}  # module file -> the notebook exporting it in this run
    for path in notebooks(args.paths):
        try:
            nb, _ = read_notebook(path)
            for warning in unexported_names(nb):
                print(f"{display_path(path)}: warning: {warning}", file=sys.stderr)
            for module in project_modules(Project.for_path(path), path, nb):
                claim(module, claimed)
                if write_module(module, force=args.force):
                    print(f"wrote {display_path(module.path)}")
                    wrote += 1
        except NbHarnessError as exc:
            print(f"nbharness export: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed or (wrote and args.exit_non_zero_on_write) else 0
