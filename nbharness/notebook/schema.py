"""Whether a notebook's JSON is valid nbformat 4.5: nbformat's own answer, without its cost.

nbformat validates with fastjsonschema, which turns the schema into Python code in every
process (about 40 ms), and importing nbformat imports jsonschema too (about 0.15 s with
jupyter_server's format checkers). Here the schema is read from nbformat's folder without
importing nbformat, and the code fastjsonschema writes for it is kept in the user's cache
folder, named by a hash of the schema and of fastjsonschema's version, so that Python's
bytecode cache loads it in a few milliseconds the next time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The nbformat version this module checks; any other goes through nbformat itself.
VERSION = (4, 5)
_SCHEMA = "nbformat.v4.5.schema.json"


def is_valid(content: object) -> bool:
    """``content`` is an nbformat 4.5 notebook that nbformat reads unchanged: valid by its
    schema, with unique cell ids (nbformat renumbers duplicates). ``False`` means only
    "ask nbformat", which upgrades, repairs or explains."""
    if not isinstance(content, dict):
        return False
    if (content.get("nbformat"), content.get("nbformat_minor")) != VERSION:
        return False
    validate = _validator()
    if validate is None:
        return False
    try:
        validate(content)
    except Exception:  # fastjsonschema's error; nbformat's message is the one users read
        return False
    ids = [cell["id"] for cell in content["cells"]]
    return len(set(ids)) == len(ids)


@functools.cache
def _validator() -> Callable[[Any], Any] | None:
    """fastjsonschema's validator of nbformat 4.5's schema; ``None`` if either is missing."""
    spec = importlib.util.find_spec("nbformat")  # finds the folder; imports nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        import fastjsonschema  # nbformat's own dependency

        schema = Path(spec.submodule_search_locations[0], "v4", _SCHEMA).read_bytes()
    except (ImportError, OSError):
        return None
    key = hashlib.sha256(schema + fastjsonschema.VERSION.encode()).hexdigest()[:16]
    try:
        return _cached(
            f"nbformat_schema_{key}", lambda: fastjsonschema.compile_to_code(json.loads(schema))
        )
    except ValueError:  # not JSON, or not a schema fastjsonschema can compile
        return None


def _cached(name: str, generate: Callable[[], str]) -> Callable[[Any], Any]:
    """The ``validate`` function of the code ``generate`` writes, imported from the cache
    folder so that its bytecode is cached too. When the folder cannot be written, or its
    file could have been written by another user, the code runs from memory; a damaged
    file is removed, for the next run to write again."""
    file = _cache_folder() / f"{name}.py"
    try:
        if not file.exists():
            file.parent.mkdir(parents=True, exist_ok=True)
            temporary = file.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(generate(), encoding="utf-8")
            os.replace(temporary, file)
        status = file.stat()
        if status.st_uid != os.getuid() or status.st_mode & 0o022:
            raise PermissionError(file)
    except OSError:
        return _from_memory(name, generate)
    try:
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.validate  # type: ignore[no-any-return]
    except (OSError, ImportError, SyntaxError, AttributeError):
        with contextlib.suppress(OSError):
            file.unlink()
        return _from_memory(name, generate)


def _from_memory(name: str, generate: Callable[[], str]) -> Callable[[Any], Any]:
    namespace: dict[str, Any] = {}
    exec(compile(generate(), name, "exec"), namespace)
    return namespace["validate"]  # type: ignore[no-any-return]


def _cache_folder() -> Path:
    """nbharness's folder in the user's cache (``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "nbharness")
