"""The paths a subcommand was given, turned into the notebooks it works on."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import display_path


def existing(paths: list[Path]) -> tuple[list[Path], int]:
    """The paths that exist, and how many did not (each named on stderr)."""
    missing = [path for path in paths if not path.exists()]
    for path in missing:
        print(f"{display_path(path)}: no such file or folder", file=sys.stderr)
    return [path for path in paths if path.exists()], len(missing)


def paired_notebooks(paths: list[Path]) -> Iterator[Path]:
    """The notebooks named or found, and for a script named, its notebook (pre-commit
    passes whichever side was staged); each once."""
    seen: set[Path] = set()
    for path in notebooks(paths):
        notebook = path if path.suffix == ".ipynb" else path.with_suffix(".ipynb")
        if notebook.exists() and notebook.resolve() not in seen:
            seen.add(notebook.resolve())
            yield notebook


def notebooks(paths: list[Path]) -> Iterator[Path]:
    """The notebooks named, and those under the folders named (not in hidden folders)."""
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*.ipynb")):
                if not any(part.startswith(".") for part in found.relative_to(path).parts):
                    yield found
        else:
            yield path
