"""``nbharness sync``: bring every notebook and its script twin into agreement."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config.project import Project
from ..errors import NbHarnessError, display_path
from ..report import render
from ..vcs.sync import sync_one
from .paths import existing, paired_notebooks


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
    paths, failed = existing(args.paths)
    written: list[str] = []
    for path in paired_notebooks(paths):
        try:
            project = Project.for_path(path)
            table = dict(project.table)
            for file in sync_one(path, project.root, table, args.prefer, args.strip_outputs):
                print(f"wrote {display_path(file)}")
                written.append(display_path(file))
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
