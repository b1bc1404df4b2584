"""Reading notebooks and the metadata nbharness understands in them."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FileProblem, InvalidNotebook
from ..text import cell_text, first_line
from . import schema

if TYPE_CHECKING:  # nbformat is imported where notebooks are read or written: it is slow
    from nbformat import NotebookNode

#: Cells with this tag are not run (nbclient's convention).
SKIP_TAG = "skip-execution"
#: Cells with this tag are expected to raise; the notebook continues after them.
RAISES_TAG = "raises-exception"


def parse_json(path: Path, text: str) -> Any:
    """The JSON in ``text`` (read from ``path``), or ``InvalidNotebook`` in one line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidNotebook(path, f"bad JSON: {exc}") from None
    except RecursionError:
        raise InvalidNotebook(path, "bad JSON: nested too deeply to read") from None


@dataclass
class StoredNotebook:
    """A notebook file as read: its JSON, valid for nbformat, and nbformat's node of it.

    The node is built on first use. Collection reads only the JSON, so a session that runs
    no notebook (``--collect-only``, a re-run ``--nb-cache`` skips, each xdist worker until
    its first notebook) never imports nbformat, whose jsonschema costs about 0.15 s.
    """

    #: The JSON, each cell's source as one string; nbformat's node once that is built.
    content: dict[str, Any]
    #: Why the notebook runs although nbformat would not call it valid (``read_notebook``).
    warning: str | None = None
    _node: NotebookNode | None = field(default=None, repr=False)

    @classmethod
    def of_node(cls, nb: NotebookNode, warning: str | None = None) -> StoredNotebook:
        """A notebook nbformat (or jupytext) has read already."""
        return cls(nb, warning, nb)

    @property
    def node(self) -> NotebookNode:
        if self._node is None:
            from nbformat.v4 import to_notebook_json  # what nbformat's reader builds

            self._node = self.content = to_notebook_json(self.content)
        return self._node


def load_notebook(path: Path) -> StoredNotebook:
    """``read_notebook``, without nbformat for a file already valid as nbformat 4.5.

    Such a file (what Jupyter writes) is checked against nbformat's own schema with
    fastjsonschema, as nbformat checks it, and its ids for uniqueness. Any other file
    (older versions, a repair, a schema error, a text notebook) is read by nbformat,
    which upgrades, repairs or explains it.
    """
    text = _read_text(path)
    if path.suffix != ".ipynb":  # a jupytext text notebook
        return StoredNotebook.of_node(_read_text_notebook(path, text))
    content = parse_json(path, text)
    if schema.is_valid(content):
        for cell in content["cells"]:
            cell["source"] = cell_text(cell["source"])
        return StoredNotebook(content)
    return StoredNotebook.of_node(*_read_with_nbformat(path, text, content))


def as_node(value: Any) -> Any:
    """nbformat's node of plain data (dicts become ``NotebookNode``, lists keep theirs).

    nbformat is imported here, on first use: modules that ``pytest --nb`` or the CLI
    import to start must not import it (its jsonschema costs about 0.15 s).
    """
    from nbformat import from_dict

    return from_dict(value)


def read_notebook(path: Path) -> tuple[NotebookNode, str | None]:
    """Read, upgrade and validate a notebook, or raise ``InvalidNotebook`` in one line.

    Files that nbformat can upgrade (v2, v3) or repair (missing cell ids) are accepted:
    that is what Jupyter itself does when it opens them. Invalid *metadata* (a kernelspec
    without a name, say) does not stop a run either; it comes back as a warning to show.
    """
    stored = load_notebook(path)
    return stored.node, stored.warning


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidNotebook(path, f"cannot read it: {exc}") from None


def _read_text_notebook(path: Path, text: str) -> NotebookNode:
    import jupytext  # 150 ms to import: only when a script is read

    try:
        nb: NotebookNode = jupytext.reads(text, fmt=path.suffix.lstrip("."))
    except Exception as exc:  # jupytext raises many kinds on odd text
        raise InvalidNotebook(path, f"{type(exc).__name__}: {_first_line(str(exc))}") from None
    return nb


def _read_with_nbformat(path: Path, text: str, raw: Any) -> tuple[NotebookNode, str | None]:
    """Upgrade, repair and validate as Jupyter does; say why a file cannot be run."""
    import nbformat

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
            _accept_cell_ids(nb)
            with contextlib.suppress(nbformat.ValidationError):
                nbformat.validate(nb)  # gives missing cell ids an id, in place
            problems = list(nbformat.validator.iter_validate(nb))
        except nbformat.ValidationError as exc:
            raise InvalidNotebook(path, f"schema error: {_first_line(exc.message)}") from None
        except Exception as exc:  # nbformat raises bare KeyError/TypeError/... on odd input
            raise InvalidNotebook(path, f"{type(exc).__name__}: {_first_line(str(exc))}") from None
    # What Jupyter opens anyway runs, with a warning: metadata it does not know, and keys
    # newer or older schemas have. What no kernel could run (a cell without source) does not.
    structural = [p for p in problems if not _tolerated(p)]
    if structural:
        problem = structural[0]
        where = _schema_location(list(problem.absolute_path))
        raise InvalidNotebook(path, f"schema error at {where}: {_first_line(problem.message)}")
    if problems:
        where = _schema_location(list(problems[0].absolute_path))
        kind = "invalid metadata" if _in_metadata(problems[0]) else "schema drift"
        return nb, f"{kind} at {where} ({_first_line(problems[0].message)}); ran anyway"
    return nb, None


def _accept_cell_ids(nb: NotebookNode) -> None:
    """Cell ids in an nbformat 4.0-4.4 file (some Jupyter versions write them) make it 4.5,
    where ids belong: the file reads as nbmake, nbval and ``jupyter execute`` read it."""
    if nb.nbformat == 4 and nb.nbformat_minor < 5 and any("id" in c for c in nb.cells):
        nb.nbformat_minor = 5


def _in_metadata(problem: Any) -> bool:
    return "metadata" in problem.absolute_path


def _tolerated(problem: Any) -> bool:
    """Invalid metadata, or a key the schema does not list: Jupyter opens such files."""
    return _in_metadata(problem) or problem.validator == "additionalProperties"


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


class NotWritten(FileProblem):
    """A file was left as it was: read-only, or the disk or folder refused the write."""

    lead = "not written: "


def write_atomically(
    path: Path, text: str, before_replace: Callable[[], None] | None = None
) -> None:
    """Write so that a reader never sees half a file: a temporary file, then a rename.

    A symlink is written through (its target changes, the link stays a link); a file
    without write permission is refused, as Jupyter refuses to save it.
    ``before_replace`` runs once the new text is on disk, just before the rename: it
    raises to abort the write (say, when the file changed since it was read).
    """
    target = Path(os.path.realpath(path))
    if target.exists() and (not target.stat().st_mode & 0o222 or not os.access(target, os.W_OK)):
        raise NotWritten(path, "the file is read-only")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise NotWritten(path, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        # mkstemp makes the file private (0600): give it the mode a plain write would.
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, target)
    except BaseException as exc:
        os.unlink(tmp)
        if isinstance(exc, OSError):
            raise NotWritten(path, exc.strerror or str(exc)) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def nbharness_metadata(nb: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's ``{"nbharness": {...}}`` metadata, or an empty dict."""
    value = nb["metadata"].get("nbharness", {})
    return value if isinstance(value, dict) else {}


def skip_reason(nb: Mapping[str, Any]) -> str | None:
    """Why the whole notebook is skipped: ``{"nbharness": {"skip": "reason"}}``, or
    pytest-notebook's ``{"nbreg": {"skip": true, "skip_reason": "..."}}``."""
    reason = nbharness_metadata(nb).get("skip")
    nbreg = nb["metadata"].get("nbreg") or {}
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


def stated_language(metadata: Mapping[str, Any]) -> str:
    """The language the notebook's metadata names ("R", "bash"); Python when it names none."""
    spec, info = metadata.get("kernelspec") or {}, metadata.get("language_info") or {}
    language = (spec.get("language") if isinstance(spec, dict) else None) or (
        info.get("name") if isinstance(info, dict) else None
    )
    return language if isinstance(language, str) and language else "python"


def is_python(language: str) -> bool:
    """Whether ``language`` is Python's, for the features only a Python kernel has."""
    return language.lower() == "python"


def _first_line(text: str) -> str:
    """A library's message cut to its first line, for a one-line reason."""
    return first_line(text, default="unknown error")
