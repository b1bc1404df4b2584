"""Which heavy modules a fork server imports once for its kernels: warm imports.

Every fresh kernel of an analysis notebook spends about a second importing numpy, pandas
and matplotlib before the user's first line runs. A fork server that imported them
already hands each kernel them for free. Only modules on a known-safe list (importing
them starts no thread and touches no IPython shell) or named in ``[tool.nbharness]
preload``, and only those a notebook imports, read from its import statements.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...config.project import Project

#: What the kernel imports for a cell that holds an ``assert``: pytest's assertion
#: rewriter (``notebook_tests/in_kernel.py``), about 0.1 s of CPU per kernel otherwise.
REWRITER = "_pytest.assertion.rewrite"

#: What a notebook's top-level import stands for in the fork server. matplotlib's
#: ``pyplot`` is not among them: importing it hooks into the running IPython shell, which
#: the fork server has not got; the modules below are what makes it slow.
SAFE: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "scipy": ("scipy",),
    REWRITER: (REWRITER,),
    "matplotlib": (
        "matplotlib",
        "matplotlib.figure",
        "matplotlib.backend_bases",
        "matplotlib.backends.backend_agg",
        "matplotlib.colorbar",
    ),
}

#: IPython syntax a cell may hold that Python cannot parse: magics, shell escapes, help.
_NOT_PYTHON = re.compile(r"^\s*[%!?].*$|^.*\?\s*$", re.MULTILINE)


def imported_modules(cells: Iterable[Any]) -> set[str]:
    """The absolute module names the code cells import (``import a.b``, ``from a import b``),
    and pytest's assertion rewriter when a cell asserts."""
    found: set[str] = set()
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(_NOT_PYTHON.sub("", str(cell.get("source", ""))))
        except (SyntaxError, ValueError):
            continue  # a cell the kernel will refuse anyway
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
            elif isinstance(node, ast.Assert):
                found.add(REWRITER)
    return found


def allowed(table: dict[str, Any]) -> dict[str, tuple[str, ...]] | None:
    """The modules a project lets the fork server preload, by top-level name; ``None``
    when ``[tool.nbharness] preload = false`` turns preloading off."""
    extra = table.get("preload", True)
    if extra is False:
        return None
    names = extra if isinstance(extra, list) else []
    return {**SAFE, **{name: (name,) for name in names}}


def modules_to_preload(cells: Iterable[Any], path: Path) -> tuple[str, ...] | None:
    """What the fork server should have imported for this notebook (sorted, possibly
    empty); ``None`` when its project turns preloading off."""
    safe = allowed(dict(Project.for_path(path).table))
    if safe is None:
        return None
    wanted: set[str] = set()
    for name in imported_modules(cells):
        parts = name.split(".")
        for depth in range(len(parts), 0, -1):  # "sklearn.linear_model", then "sklearn"
            if ".".join(parts[:depth]) in safe:
                wanted.update(safe[".".join(parts[:depth])])
                break
    return tuple(sorted(wanted))
