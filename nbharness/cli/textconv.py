"""``nbharness textconv`` and ``nbharness config-git``: notebooks in ``git diff`` as text.

``textconv`` prints what a reviewer reads: the notebook as a script, then one line per
output (type, size, a short hash for images, the first line of text, the error). git
runs it through a diff driver of our own name, so a machine without nbharness still
gets git's plain diff.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..errors import display_path
from ..notebook.io import read_notebook
from ..vcs.git import ATTRIBUTE, configure_drivers
from ..vcs.review import merge, review_text


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    textconv = subparsers.add_parser("textconv", help="print a notebook as review text")
    textconv.add_argument("path", type=Path)
    textconv.set_defaults(run=run_textconv)
    config = subparsers.add_parser(
        "config-git", help="make git diff show notebooks as review text (this repository)"
    )
    config.set_defaults(run=run_config_git)
    driver = subparsers.add_parser(
        "merge-driver", help="git's merge driver for notebooks (set up by config-git)"
    )
    for name in ("base", "ours", "theirs"):
        driver.add_argument(name, type=Path)
    driver.add_argument("path", nargs="?", help="the notebook's path in the repository")
    driver.set_defaults(run=run_merge_driver)


def run_textconv(args: argparse.Namespace) -> int:
    nb, _ = read_notebook(args.path)
    print(review_text(nb), end="")
    return 0


def run_merge_driver(args: argparse.Namespace) -> int:
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


def run_config_git(args: argparse.Namespace) -> int:
    # git may not share our PATH: name the command by its full path
    configure_drivers(Path.cwd(), shutil.which("nbharness") or "nbharness")
    print(
        "git diff now shows notebooks as review text and git merge merges them "
        f"({ATTRIBUTE}; commit .gitattributes)"
    )
    return 0
