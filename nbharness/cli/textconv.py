"""``nbharness textconv`` and ``nbharness config-git``: notebooks in ``git diff`` as text.

``textconv`` prints what a reviewer reads: the notebook as a script, then one line per
output (type, size, a short hash for images, the first line of text, the error). git
runs it through a diff driver of our own name, so a machine without nbharness still
gets git's plain diff.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

from nbformat import NotebookNode

from ..errors import display_path
from ..notebook.io import read_notebook
from ..report import strip_ansi
from ..vcs.git import ATTRIBUTE, configure_drivers
from ..vcs.merge import merge
from ..vcs.pairing import DEFAULT_FORMAT, script_text


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


def review_text(nb: NotebookNode) -> str:
    lines = [script_text(nb, DEFAULT_FORMAT).rstrip("\n"), "", "# Outputs"]
    for number, cell in enumerate(nb.cells, start=1):
        for out in cell.get("outputs", []):
            lines.append(f"# cell {number}: {_summary(out)}")
    return "\n".join(lines) + "\n"


def _summary(out: dict[str, object]) -> str:
    kind = str(out.get("output_type"))
    if kind == "error":
        return f"error {out.get('ename')}: {out.get('evalue')}"
    if kind == "stream":
        text = strip_ansi("".join(out.get("text", "")))  # type: ignore[arg-type]
        return f"{out.get('name')} ({len(text.splitlines())} lines) {_first(text)}"
    parts = []
    data = out.get("data", {})
    assert isinstance(data, dict)
    for mime, value in sorted(data.items()):
        text = "".join(value) if isinstance(value, list) else str(value)
        if mime.startswith("image/"):
            parts.append(
                f"{mime} {len(text)} bytes sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
            )
        elif mime == "text/plain":
            parts.append(f"{mime} {_first(text)}")
        else:
            parts.append(f"{mime} ({len(text)} chars)")
    return f"{kind}: " + "; ".join(parts)


def _first(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:120] + (" …" if len(first) > 120 else "")


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
