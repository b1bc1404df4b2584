"""``nbharness merge-driver``: git's merge driver for notebooks (set up by config-git)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import display_path
from ..vcs.review import merge


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "merge-driver", help="git's merge driver for notebooks (set up by config-git)"
    )
    for name in ("base", "ours", "theirs"):
        parser.add_argument(name, type=Path)
    parser.add_argument("path", nargs="?", help="the notebook's path in the repository")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 for a clean merge, 1 to make git report a conflict."""
    result = merge(args.base, args.ours, args.theirs)
    shown = args.path or display_path(args.ours)
    for key in result.metadata_conflicts:
        print(
            f"{shown}: notebook metadata {key!r} changed differently on both sides; "
            "kept ours, edit it by hand",
            file=sys.stderr,
        )
    return 0 if result.clean else 1
