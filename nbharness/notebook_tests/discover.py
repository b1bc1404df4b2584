"""The tests a notebook defines, found by reading its cells: no kernel at collection.

A ``test*`` function or a ``Test*`` class (without ``__init__``) with ``test*`` methods,
defined at the top level of a code cell, is a test, as pytest would collect it from a
module. ``@pytest.mark.parametrize`` over literal values gives pytest's ids
(``test_add[1-2]``); over anything else (a variable, a call) the test stays one item under
its bare name, and its cases are reported together. Cells run by a cell magic
(``%%ipytest`` among them) are left alone: ipytest runs and cleans up its own tests.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..text import cell_text

#: A line IPython turns into a call (``%time x``, ``!ls``): blanked before parsing.
_MAGIC_LINE = re.compile(r"^([ \t]*)[%!].*$", re.MULTILINE)
#: A top-level test function or class starts a line so: a cell without one is not parsed.
_MAY_DEFINE_TESTS = re.compile(r"^(?:(?:async\s+)?def\s+test|class\s+Test)", re.MULTILINE)
#: A string id pytest takes as it is (no escaping, no shortening).
_PLAIN_STRING = re.compile(r"[A-Za-z0-9_.+ -]{1,30}")


@dataclass(frozen=True)
class FoundTest:
    """One test item: its id after the notebook's (``TestA::test_b``, ``test_p[1]``)."""

    id: str
    #: 0-based index of the cell that defines it.
    cell: int


def find_tests(nb: Mapping[str, Any]) -> list[FoundTest]:
    """The notebook's tests in pytest's order: by first definition, the last one winning."""
    found: dict[str, FoundTest] = {}
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for test_id in _tests_in(cell_text(cell["source"])):
            found[test_id] = FoundTest(test_id, index)
    return list(found.values())


def _tests_in(source: str) -> list[str]:
    if source.lstrip().startswith("%%") or not _MAY_DEFINE_TESTS.search(source):
        return []
    try:
        module = ast.parse(_MAGIC_LINE.sub(r"\1pass", source))
    except SyntaxError:  # the run reports it, in its cell
        return []
    ids: list[str] = []
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_test(node.name):
            ids += _with_cases(node.name, _parametrized(node.decorator_list))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            ids += _class_tests(node)
    return ids


def _is_test(name: str) -> bool:
    return name.startswith("test")


def _class_tests(node: ast.ClassDef) -> list[str]:
    methods = [m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if any(m.name == "__init__" for m in methods):
        return []  # pytest does not collect it either (and warns)
    own = _parametrized(node.decorator_list)
    ids = []
    for method in methods:
        if _is_test(method.name):
            mine = _parametrized(method.decorator_list)
            cases = None if mine is None or own is None else mine + own
            ids += _with_cases(f"{node.name}::{method.name}", cases)
    return ids


def _with_cases(name: str, parametrizations: list[list[str]] | None) -> list[str]:
    """``name`` with each case's id; the bare name when the ids are not known."""
    if not parametrizations:
        return [name]
    return [f"{name}[{'-'.join(parts)}]" for parts in itertools.product(*parametrizations)]


def _parametrized(decorators: list[ast.expr]) -> list[list[str]] | None:
    """The case ids of each ``parametrize`` decorator, the closest to the function first
    (pytest's order); ``None`` when one of them is not literal."""
    ids: list[list[str]] = []
    for decorator in reversed(decorators):
        if not (isinstance(decorator, ast.Call) and _name_of(decorator.func) == "parametrize"):
            continue
        case_ids = _case_ids(decorator)
        if case_ids is None:
            return None
        ids.append(case_ids)
    return ids


def _name_of(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _case_ids(call: ast.Call) -> list[str] | None:
    keywords = {k.arg: k.value for k in call.keywords}
    argnames_node = call.args[0] if call.args else keywords.get("argnames")
    values_node = call.args[1] if len(call.args) > 1 else keywords.get("argvalues")
    try:
        argnames = ast.literal_eval(argnames_node) if argnames_node else None
        given = ast.literal_eval(keywords["ids"]) if "ids" in keywords else None
    except ValueError:
        return None
    if isinstance(argnames, str):
        argnames = [name.strip() for name in argnames.split(",") if name.strip()]
    if not isinstance(argnames, (list, tuple)):
        return None
    if not isinstance(values_node, (ast.List, ast.Tuple)):
        return None
    if not values_node.elts:
        return None  # pytest's own "[NOTSET]" case
    ids = []
    for index, case in enumerate(values_node.elts):
        explicit = given[index] if isinstance(given, (list, tuple)) and index < len(given) else None
        case_id = explicit if isinstance(explicit, str) else _case_id(case, len(argnames))
        if case_id is None:
            return None
        ids.append(case_id)
    return _unique(ids)


def _case_id(case: ast.expr, arity: int) -> str | None:
    """pytest's id for one literal case: its values' ids joined by ``-``."""
    if isinstance(case, ast.Call) and _name_of(case.func) == "param":
        own = {k.arg: k.value for k in case.keywords}.get("id")
        if isinstance(own, ast.Constant) and isinstance(own.value, str):
            return own.value
        values: list[ast.expr] | None = case.args
    elif arity == 1:
        values = [case]
    else:
        values = case.elts if isinstance(case, (ast.Tuple, ast.List)) else None
    if values is None or len(values) != arity:
        return None
    parts = [_value_id(value) for value in values]
    return None if None in parts else "-".join(p for p in parts if p is not None)


def _value_id(node: ast.expr) -> str | None:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, str) and _PLAIN_STRING.fullmatch(value):
        return value
    return None


def _unique(ids: list[str]) -> list[str] | None:
    """Duplicate ids are pytest's to number; left to the kernel (the bare name)."""
    return ids if len(set(ids)) == len(ids) else None
