"""Import nbformat without paying for an IRI grammar it never uses.

nbformat imports jsonschema, whose format checkers import ``rfc3987_syntax`` when it is
installed (jupyter_server brings it, through jupyter_events), and that module builds a
Lark grammar at import: about 1.5 s in every process that reads a notebook. Notebook
validation never checks the ``iri`` format. So while ``jsonschema._format`` runs, a
stand-in takes that module's place: its one function imports the real module on first
call, so a user's own IRI check still works, and ``import rfc3987_syntax`` afterwards
gets the real module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import importlib.abc
    import importlib.machinery

GRAMMAR_MODULE = "rfc3987_syntax"
#: The module that imports it at its own import, for format checks we never ask for.
CHECKERS_MODULE = "jsonschema._format"


def defer() -> None:
    """From now on, the first import of jsonschema's format checkers leaves the grammar
    unbuilt. Nothing happens when they are imported already."""
    if CHECKERS_MODULE in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


def is_valid_syntax(*args: Any, **kwargs: Any) -> Any:
    """The stand-in's one function: the real one, imported on first use."""
    real = importlib.import_module(GRAMMAR_MODULE)
    return real.is_valid_syntax(*args, **kwargs)


class _Finder:
    """Finds nothing itself: wraps the loader of the checkers module, once.

    A plain class, not ``importlib.abc``'s: importing that module costs every entry
    point (the CLI, the hooks) about 20 ms."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != CHECKERS_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            # A loader by its methods; typeshed names importlib.abc's class.
            spec.loader = cast("importlib.abc.Loader", _WithStandIn(spec.loader))
        return spec


class _WithStandIn:
    """Runs the checkers module with the stand-in in ``sys.modules``, then removes it."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        if GRAMMAR_MODULE in sys.modules or importlib.util.find_spec(GRAMMAR_MODULE) is None:
            # imported already, or not installed (then jsonschema must not see it either)
            self.loader.exec_module(module)
            return
        stand_in = types.ModuleType(GRAMMAR_MODULE, __doc__)
        stand_in.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined]
        sys.modules[GRAMMAR_MODULE] = stand_in
        try:
            self.loader.exec_module(module)
        finally:
            if sys.modules.get(GRAMMAR_MODULE) is stand_in:
                del sys.modules[GRAMMAR_MODULE]
