"""``nbharness textconv``: print a notebook as review text, for ``git diff``'s driver."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..notebook.io import read_notebook
from ..vcs.review import review_text


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("textconv", help="print a notebook as review text")
    parser.add_argument("path", type=Path)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    nb, _ = read_notebook(args.path)
    print(review_text(nb), end="")
    return 0
