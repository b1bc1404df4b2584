"""Which notebooks pair, with which twin: the pairing format and the twin's path.

The format comes from ``[tool.nbharness] pairing``, else from jupytext's own
configuration, so jupytext users change nothing. What to do with a pair is ``sync.py``'s
job; turning a notebook into its script and back is ``scripts.py``'s.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from nbformat import NotebookNode

from ..config.project import load_toml, tool_table
from ..errors import NbHarnessError

DEFAULT_FORMAT = "py:percent"
_EXTENSIONS = {"py": ".py", "md": ".md", "myst": ".md", "Rmd": ".Rmd", "qmd": ".qmd", "R": ".R"}
_LANGUAGE_EXTENSIONS = {"python": "py", "r": "R", "julia": "jl", "bash": "sh", "c++": "cpp"}


def pairing_of(root: Path, table: dict[str, object], nb: NotebookNode) -> Pairing | None:
    """The pairing in effect: ``[tool.nbharness] pairing``, else the notebook's own jupytext
    ``formats``; ``None`` when neither pairs it (or ``pairing = false``)."""
    fmt = table.get("pairing")
    where = f"{root / 'pyproject.toml'}: [tool.nbharness] pairing"
    if fmt is False:
        return None
    if fmt is None:
        fmt, where = _jupytext_format(root, nb)
    if fmt is None:
        return None
    if not isinstance(fmt, str) or not re.fullmatch(r"[A-Za-z]+(:[A-Za-z]+)?", fmt):
        raise NbHarnessError(
            f"{where}: expected a jupytext format such as 'py:percent', 'md:myst' or "
            f"'auto:percent', got {fmt!r}"
        )
    scripts = table.get("scripts_dir")
    return Pairing(_for_language(fmt, nb), root, str(scripts) if scripts else None)


def _jupytext_format(root: Path, nb: NotebookNode) -> tuple[str | None, str]:
    """jupytext's own pairing, for projects that have one: the notebook's ``formats``
    metadata, else ``formats`` in ``jupytext.toml`` or ``[tool.jupytext]``."""
    sources = [
        ((nb.metadata.get("jupytext") or {}).get("formats"), "the notebook's jupytext formats")
    ]
    for config, where in (
        (load_toml(root / "jupytext.toml"), f"{root / 'jupytext.toml'}: formats"),
        (
            load_toml(root / "pyproject.toml").get("tool", {}).get("jupytext", {}),
            "[tool.jupytext] formats",
        ),
    ):
        sources.append((config.get("formats"), where))
    for formats, where in sources:
        if not formats:
            continue
        if not isinstance(formats, str) or "/" in formats:
            raise NbHarnessError(
                f"{where}: only a plain formats string such as 'ipynb,py:percent' is "
                f"understood, not {formats!r} (set [tool.nbharness] pairing instead)"
            )
        others = [f for f in formats.split(",") if f and not f.startswith("ipynb")]
        if others:
            return others[0], where
    return None, ""


def _for_language(fmt: str, nb: NotebookNode) -> str:
    """``auto`` (or ``py`` for a notebook in another language) becomes the language's
    own script extension: an R notebook pairs with ``.R``, never with a ``.py``."""
    extension, _, name = fmt.partition(":")
    language = str((nb.metadata.get("kernelspec") or {}).get("language") or "python").lower()
    if extension == "auto" or (extension == "py" and language != "python"):
        info_extension = str((nb.metadata.get("language_info") or {}).get("file_extension", ""))
        extension = info_extension.lstrip(".") or _LANGUAGE_EXTENSIONS.get(language, "txt")
    return f"{extension}:{name}" if name else extension


@dataclass(frozen=True)
class Pairing:
    """How notebooks pair: a jupytext format, and an optional folder for the scripts."""

    fmt: str = DEFAULT_FORMAT
    root: Path = Path(".")
    scripts_dir: str | None = None

    def twin(self, notebook: Path) -> Path:
        extension = _EXTENSIONS.get(self.fmt.split(":")[0], "." + self.fmt.split(":")[0])
        if self.scripts_dir is None:
            return notebook.with_suffix(extension)
        relative = notebook.resolve().relative_to(self.root.resolve())
        return (self.root / self.scripts_dir / relative).with_suffix(extension)


#: How a jupytext text notebook starts, by extension: a YAML header naming ``jupyter``.
_HEADERS = {".py": "# ---\n# jupyter:", ".md": "---\njupyter:", ".R": "# ---\n# jupyter:"}


def is_script_only_notebook(path: Path, root: Path) -> bool:
    """A jupytext text notebook with no ``.ipynb`` twin (so it runs as itself)."""
    header = _HEADERS.get(path.suffix)
    if header is None:
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            start = fh.read(len(header) + 2)
    except (OSError, UnicodeDecodeError):
        return False
    if not start.startswith(header):
        return False
    return not path.with_suffix(".ipynb").exists() and not _twin_in_tree(path, root)


def _twin_in_tree(script: Path, root: Path) -> bool:
    """With ``scripts_dir``, the notebook lives in the mirrored tree under the root."""
    scripts_dir = tool_table(root / "pyproject.toml").get("scripts_dir")
    if not scripts_dir:
        return False
    try:
        relative = script.resolve().relative_to((root / str(scripts_dir)).resolve())
    except ValueError:
        return False
    return (root / relative).with_suffix(".ipynb").exists()


def twin_name(notebook: Path, script: Path) -> str:
    """The twin as the sync record names it: relative to the notebook's folder."""
    return Path(os.path.relpath(script, notebook.parent)).as_posix()
