"""``nbharness config-git``: make this repository diff and merge notebooks with nbharness."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..vcs.git import ATTRIBUTE, configure_drivers


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config-git", help="make git diff show notebooks as review text (this repository)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # git may not share our PATH: name the command by its full path
    configure_drivers(Path.cwd(), shutil.which("nbharness") or "nbharness")
    print(
        "git diff now shows notebooks as review text and git merge merges them "
        f"({ATTRIBUTE}; commit .gitattributes)"
    )
    return 0
