"""Which notebooks pair, with which twin: the pairing format and the twin's path.

The format comes from ``[tool.nbharness] pairing``, else from jupytext's own
configuration, so jupytext users change nothing. What to do with a pair is ``sync.py``'s
job; turning a notebook into its script and back is ``scripts.py``'s.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.project import PYPROJECT, load_toml, tool_table
from ..errors import NbHarnessError

if TYPE_CHECKING:
    from nbformat import NotebookNode

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
    metadata, else the formats of jupytext's configuration file, found as jupytext finds
    it from the project root (there or in a parent folder)."""
    where = "the notebook's jupytext formats"
    own = (nb.metadata.get("jupytext") or {}).get("formats")
    fmt = _script_format(own, where) if own else None
    if fmt is not None:
        return fmt, where
    file = _jupytext_config_file(root)
    if file is None:
        return None, ""
    where = f"{file}: {'[tool.jupytext] ' if file.name == PYPROJECT else ''}formats"
    for group in _paired_formats(file, file.stat().st_mtime_ns):
        fmt = _script_format(group, where)
        if fmt is not None:
            return fmt, where
    return None, ""


def _script_format(formats: object, where: str) -> str | None:
    """The script format of one group of paired formats: ``ipynb,py:percent`` →
    ``py:percent``; ``None`` when the group holds no format but the notebook's."""
    if not isinstance(formats, str) or "/" in formats:
        raise NbHarnessError(
            f"{where}: only formats that pair in the notebook's own folder, such as "
            f"'ipynb,py:percent', are understood, not {formats!r} (set [tool.nbharness] "
            "pairing and scripts_dir instead)"
        )
    others = [f for f in formats.split(",") if f and not f.startswith("ipynb")]
    return others[0] if others else None


def _jupytext_config_file(root: Path) -> Path | None:
    """jupytext's configuration file for notebooks under ``root``, by jupytext's own search,
    in ``root`` or a folder above it. A file in the user's configuration folders, where
    jupytext looks last, is not the project's: CI and a laptop must pair alike."""
    from jupytext.config import (  # type: ignore[import-untyped]
        find_jupytext_configuration_file,
    )

    try:
        found = find_jupytext_configuration_file(root)
    except (ValueError, OSError) as exc:  # it parses each pyproject.toml on the way up
        for folder in (root, *root.parents):
            load_toml(folder / PYPROJECT)  # names the file that failed
        raise NbHarnessError(f"{root}: jupytext's configuration search failed: {exc}") from None
    if not found:
        return None
    folder = Path(found).parent.resolve()
    return Path(found) if folder in (root.resolve(), *root.resolve().parents) else None


@functools.lru_cache(maxsize=64)
def _paired_formats(file: Path, mtime_ns: int) -> tuple[str, ...]:
    """The groups of paired formats in a jupytext configuration file, parsed and checked by
    jupytext (strings, lists and tables alike); read again only when the file changes."""
    from jupytext.config import (
        JupytextConfigurationError,
        normalize_formats,
        parse_jupytext_configuration_file,
        validate_jupytext_configuration_file,
    )

    try:
        with warnings.catch_warnings():  # traitlets warns of an unknown key jupytext refuses
            warnings.simplefilter("ignore", DeprecationWarning)
            config = validate_jupytext_configuration_file(
                str(file), parse_jupytext_configuration_file(str(file))
            )
        formats = tuple(normalize_formats(config.formats if config else None))
    except JupytextConfigurationError as exc:  # its message names the file
        raise NbHarnessError(str(exc).splitlines()[0]) from None
    except Exception as exc:  # YAML, or a .jupytext.py that fails: jupytext lets them through
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise NbHarnessError(f"{file}: jupytext cannot read it: {reason}") from None
    return formats


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
    scripts_dir = tool_table(root / PYPROJECT).get("scripts_dir")
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
