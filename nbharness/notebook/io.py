"""Reading notebooks and the metadata nbharness understands in them."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidNotebook

if TYPE_CHECKING:  # nbformat is imported where notebooks are read or written: it is slow
    from nbformat import NotebookNode

#: Cells with this tag are not run (nbclient's convention).
SKIP_TAG = "skip-execution"
#: Cells with this tag are expected to raise; the notebook continues after them.
RAISES_TAG = "raises-exception"


def read_notebook(path: Path) -> tuple[NotebookNode, str | None]:
    """Read, upgrade and validate a notebook, or raise ``InvalidNotebook`` in one line.

    Files that nbformat can upgrade (v2, v3) or repair (missing cell ids) are accepted:
    that is what Jupyter itself does when it opens them. Invalid *metadata* (a kernelspec
    without a name, say) does not stop a run either; it comes back as a warning to show.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidNotebook(path, f"cannot read it: {exc}") from None
    if path.suffix != ".ipynb":  # a jupytext text notebook
        import jupytext  # 150 ms to import: only when a script is read

        try:
            return jupytext.reads(text, fmt=path.suffix.lstrip(".")), None
        except Exception as exc:  # jupytext raises many kinds on odd text
            raise InvalidNotebook(path, f"{type(exc).__name__}: {_first_line(str(exc))}") from None
    import nbformat

    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidNotebook(path, f"bad JSON: {exc}") from None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        raise InvalidNotebook(path, "the JSON is not a notebook (no 'nbformat' key)")
    version = raw["nbformat"]
    if not isinstance(version, int) or not 1 <= version <= nbformat.current_nbformat:
        raise InvalidNotebook(path, f"unsupported nbformat version {version!r}")
    with warnings.catch_warnings():
        # nbformat warns about what it repairs (e.g. missing cell ids); we accept those files.
        warnings.simplefilter("ignore")
        try:
            nb: NotebookNode = nbformat.reader.reads(text)
            if nb.nbformat < 4:
                nb = nbformat.convert(nb, 4)
            with contextlib.suppress(nbformat.ValidationError):
                nbformat.validate(nb)  # gives missing cell ids an id, in place
            problems = list(nbformat.validator.iter_validate(nb))
        except nbformat.ValidationError as exc:
            raise InvalidNotebook(path, f"schema error: {_first_line(exc.message)}") from None
        except Exception as exc:  # nbformat raises bare KeyError/TypeError/... on odd input
            raise InvalidNotebook(path, f"{type(exc).__name__}: {_first_line(str(exc))}") from None
    structural = [p for p in problems if "metadata" not in p.absolute_path]
    if structural:
        problem = structural[0]
        where = _schema_location(list(problem.absolute_path))
        raise InvalidNotebook(path, f"schema error at {where}: {_first_line(problem.message)}")
    if problems:
        where = _schema_location(list(problems[0].absolute_path))
        return nb, f"invalid metadata at {where} ({_first_line(problems[0].message)}); ran anyway"
    return nb, None


def _schema_location(parts: list[str | int]) -> str:
    """``["cells", 3, "source"]`` as a user reads it: ``cell 4: source``."""
    if len(parts) >= 2 and parts[0] == "cells" and isinstance(parts[1], int):
        rest = ".".join(str(part) for part in parts[2:])
        return f"cell {parts[1] + 1}" + (f": {rest}" if rest else "")
    return ".".join(str(part) for part in parts) or "the top level"


def write_notebook(
    nb: NotebookNode, path: Path, before_replace: Callable[[], None] | None = None
) -> None:
    import nbformat

    write_atomically(path, nbformat.writes(nb) + "\n", before_replace)


def write_atomically(
    path: Path, text: str, before_replace: Callable[[], None] | None = None
) -> None:
    """Write so that a reader never sees half a file: a temporary file, then a rename.
    ``before_replace`` runs once the new text is on disk, just before the rename: it
    raises to abort the write (say, when the file changed since it was read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        # mkstemp makes the file private (0600): give it the mode a plain write would.
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def nbharness_metadata(nb: NotebookNode) -> dict[str, Any]:
    """The notebook's ``{"nbharness": {...}}`` metadata, or an empty dict."""
    value = nb.metadata.get("nbharness", {})
    return value if isinstance(value, dict) else {}


def skip_reason(nb: NotebookNode) -> str | None:
    """Why the whole notebook is skipped: ``{"nbharness": {"skip": "reason"}}``, or
    pytest-notebook's ``{"nbreg": {"skip": true, "skip_reason": "..."}}``."""
    reason = nbharness_metadata(nb).get("skip")
    nbreg = nb.metadata.get("nbreg") or {}
    if (reason is None or reason is False) and isinstance(nbreg, dict) and nbreg.get("skip"):
        reason = nbreg.get("skip_reason") or True
    if reason is None or reason is False:
        return None
    return reason if isinstance(reason, str) and reason else "skipped by notebook metadata"


def cell_timeout(cell: Mapping[str, Any]) -> float | None:
    """A cell's own limit: ``{"nbharness": {"timeout": seconds}}`` in its metadata."""
    value = (cell.get("metadata", {}).get("nbharness") or {}).get("timeout")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def execution_metadata(nb: NotebookNode) -> tuple[float | None, bool]:
    """nbmake's notebook metadata ``{"execution": {"timeout": s, "allow_errors": b}}``."""
    execution = nb.metadata.get("execution") or {}
    if not isinstance(execution, dict):
        return None, False
    timeout = execution.get("timeout")
    allow_errors = execution.get("allow_errors") is True
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        return float(timeout), allow_errors
    return None, allow_errors


def cell_tags(cell: Mapping[str, Any]) -> set[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return {t for t in tags if isinstance(t, str)}


def kernel_name(nb: NotebookNode) -> str | None:
    """The kernelspec name the notebook asks for, if any."""
    spec = nb.metadata.get("kernelspec") or {}
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"
