"""Traced inputs: what a notebook read from the project during its run, seen from inside
the kernel, so that ``--nb-cache``, ``--nb-changed-since`` and the freshness record
notice a changed data file or local module that nobody declared.

A Python audit hook (``sys.addaudithook``) set up before the first cell records every
file opened for reading under the project (a module imported from the project is read
the same way, or through its ``__pycache__`` file), and after the last cell the list is
written where the harness finds it again: one file per notebook in pytest's cache
folder. The hook lives in the kernel process, so each kernel has its own, whichever
launcher started it. Remote kernels read a filesystem we cannot hash: nothing is traced.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Installs the hook; ``{root!r}`` is the project folder. Paths in hidden folders
#: (``.venv``, ``.git``) and in ``site-packages`` are not the project's.
PROLOGUE = """\
def __nbharness_trace(root):
    import os, sys
    read = set()
    root = os.path.realpath(root) + os.sep
    def hook(event, args):
        if event != "open" or not isinstance(args[0], (str, os.PathLike)):
            return
        mode, flags = args[1], args[2] if len(args) > 2 else 0
        if mode is None:
            writes = (flags or 0) & (os.O_WRONLY | os.O_RDWR)
        else:
            writes = any(c in str(mode) for c in "wax+")
        if writes:
            return
        path = os.path.realpath(os.fspath(args[0]))
        if not path.startswith(root) or "site-packages" in path:
            return
        parts = path[len(root):].split(os.sep)
        if parts[-2:-1] == ["__pycache__"] and path.endswith(".pyc"):
            parts = parts[:-2] + [parts[-1].split(".")[0] + ".py"]
        if not any(part.startswith(".") for part in parts) and parts[-1]:
            read.add("/".join(parts))
    sys.addaudithook(hook)
    return read
__nbharness_read = __nbharness_trace({root!r})
del __nbharness_trace
"""
#: Writes the list; ``{out!r}`` is where.
EPILOGUE = """\
with open({out!r}, "w") as __nbharness_out:
    __import__("json").dump(sorted(__nbharness_read), __nbharness_out)
del __nbharness_out
"""


def traced_file(folder: Path, notebook: Path) -> Path:
    """Where the inputs ``notebook`` read in its last run are listed."""
    name = hashlib.sha256(str(notebook.resolve()).encode()).hexdigest()[:24]
    return folder / f"{name}.json"


def traced_paths(folder: Path, notebook: Path, root: Path) -> list[Path]:
    """The project files ``notebook`` read in its last traced run (none if unknown)."""
    try:
        listed = json.loads(traced_file(folder, notebook).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(listed, list):
        return []
    notebook = notebook.resolve()
    paths = [root / name for name in listed if isinstance(name, str)]
    return [path for path in paths if path.resolve() != notebook]


def content_hashes(root: Path, paths: Iterable[Path]) -> dict[str, str]:
    """``{path relative to root: hash of its bytes}``; a file gone since hashes as ``""``."""
    hashes = {}
    for path in paths:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        except OSError:
            digest = ""
        hashes[Path(os.path.relpath(path, root)).as_posix()] = digest
    return hashes


@dataclass(frozen=True)
class Tracing:
    """Where traced runs list what they read (pytest's cache folder), and the project
    folder whose files count as inputs (the test root)."""

    folder: Path
    root: Path

    def code(self, notebook: Path) -> tuple[str, str]:
        """The prologue and epilogue that trace ``notebook``'s reads."""
        out = str(traced_file(self.folder, notebook))
        return PROLOGUE.format(root=str(self.root)), EPILOGUE.format(out=out)

    def read_by(self, notebook: Path) -> list[Path]:
        return traced_paths(self.folder, notebook, self.root)
