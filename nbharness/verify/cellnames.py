"""The names one code cell defines and uses, read statically (``ast``), magics understood.

A clean run executes each cell's top level at once, but a function body only when it is
called: so a name read at the top level must exist when the cell runs ("now"), while a
name read inside a function must merely exist somewhere in the notebook ("late").
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

#: Cell magics whose body is Python that runs in the notebook's namespace.
PYTHON_CELL_MAGICS = {"time", "capture", "prun"}
#: Cell magics whose body is Python whose assignments do not reach the notebook.
SCOPED_CELL_MAGICS = {"timeit"}
#: Cell magics whose body is not Python and defines nothing in it.
FOREIGN_CELL_MAGICS = {
    *("bash", "sh", "script", "html", "HTML", "javascript", "js", "latex", "markdown"),
    *("svg", "writefile", "file", "perl", "ruby", "python2", "python3", "pypy", "debug"),
    *("system", "sx"),
}
#: Line magics that may define any name (``%run`` a script, ``%store -r``, ``%pylab``).
DEFINING_LINE_MAGICS = {"run", "store", "pylab", "R", "sql", "load", "macro", "aimport"}
#: Line magics whose argument is a Python statement run in the notebook's namespace
#: (``%timeit``'s assignments do not stay, but it is read as if they did: rare, harmless).
PYTHON_LINE_MAGICS = {"time", "timeit", "prun"}
#: Exceptions whose handler makes a ``try`` body's missing names harmless.
NAME_GUARDS = {"NameError", "Exception", "BaseException"}

#: ``try`` and, from Python 3.11, ``try``/``except*``.
_TRY = (ast.Try, getattr(ast, "TryStar", ast.Try))
_MAGIC_LINE = re.compile(r"^(\s*)(%{1,2}|!{1,2})(.*)$")
_SHELL_ASSIGN = re.compile(r"^(\s*)([\w.,\s()\[\]*]+?)\s*=\s*(%|!)(.*)$")
_HELP_LINE = re.compile(r"^(\s*)(\?{1,2}[\w.]*|[\w.]+\?{1,2})\s*$")


@dataclass
class CellNames:
    """What one cell needs from the cells above and leaves behind for the cells below."""

    #: Top-level reads of names the cell has not bound yet, in order, each once.
    now: list[str] = field(default_factory=list)
    #: Reads inside function bodies and lambdas: they run when called, maybe much later.
    late: set[str] = field(default_factory=set)
    defines: set[str] = field(default_factory=set)
    #: Names whose objects the cell changes in place (``df["a"] = …``, ``x.y = …``).
    mutates: set[str] = field(default_factory=set)
    deletes: set[str] = field(default_factory=set)
    #: The cell may define names no one can read off it (``import *``, ``%run``, an
    #: unknown cell magic, source that does not parse).
    opaque: bool = False


def cell_names(source: str) -> CellNames:
    """The names ``source`` (one code cell, IPython syntax allowed) defines and uses."""
    python, names = _as_python(source)
    if names.opaque or not python.strip():
        return names
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" is the cell's business
            warnings.simplefilter("ignore")
            tree = ast.parse(python)
    except (SyntaxError, ValueError):
        return CellNames(opaque=True)
    _Reader(names).statements(tree.body)
    return names


def _as_python(source: str) -> tuple[str, CellNames]:
    """The cell as plain Python, magics and shell lines turned into what they bind, as
    IPython's input transformers would (without importing IPython: a lint must be quick)."""
    names = CellNames()
    lines = source.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first.startswith("%%"):
        magic, _, rest = first[2:].partition(" ")
        body = lines[lines.index(first) + 1 :]
        if magic == "capture":
            names.defines.update(word for word in rest.split() if not word.startswith("-"))
        if magic in SCOPED_CELL_MAGICS:
            scoped = cell_names("\n".join(body))
            return "", CellNames(now=scoped.now, late=scoped.late, opaque=scoped.opaque)
        if magic in FOREIGN_CELL_MAGICS:
            return "", names
        if magic not in PYTHON_CELL_MAGICS:
            names.opaque = True
            return "", names
        lines = body
    return "\n".join(_python_line(line, names) for line in lines), names


def _python_line(line: str, names: CellNames) -> str:
    if "%" not in line and "!" not in line and "?" not in line:
        return line
    help_line = _HELP_LINE.match(line)
    if help_line:
        return f"{help_line.group(1)}pass"
    assign = _SHELL_ASSIGN.match(line)
    if assign and not assign.group(2).rstrip().endswith(("=", "!", "<", ">")):
        return f"{assign.group(1)}{assign.group(2)} = None"
    magic = _MAGIC_LINE.match(line)
    if magic is None:
        return line
    indent, sigil, rest = magic.groups()
    if sigil.startswith("%"):
        name, _, argument = rest.partition(" ")
        if name in DEFINING_LINE_MAGICS:
            names.opaque = True
        elif name in PYTHON_LINE_MAGICS:
            statement = argument.strip()
            while statement.startswith("-"):  # %timeit -n 10 -r 3 f(x): skip the options
                _, _, statement = statement.partition(" ")
                statement = statement.lstrip()
                if statement[:1].isdigit():
                    _, _, statement = statement.partition(" ")
            return f"{indent}{statement or 'pass'}"
    return f"{indent}pass"


class _Reader:
    """Walks a cell's statements in the order a run evaluates them."""

    def __init__(self, names: CellNames) -> None:
        self.names = names
        self.bound: set[str] = set()
        self.guarded = 0  # inside ``try`` bodies whose handlers catch NameError

    def statements(self, body: Iterable[ast.stmt]) -> None:
        for statement in body:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.expressions([*node.decorator_list, *_defaults(node.args)])
            self.expressions(_annotations(node))
            self.names.late |= _free_names(node, self.names)
            self.bind(node.name)
        elif isinstance(node, ast.ClassDef):
            self.expressions([*node.decorator_list, *node.bases, *node.keywords])
            self.class_body(node)
            self.bind(node.name)
        elif isinstance(node, ast.Assign):
            self.expression(node.value)
            for target in node.targets:
                self.target(target)
        elif isinstance(node, ast.AugAssign):
            self.expression(node.value)
            if isinstance(node.target, ast.Name):
                self.use(node.target.id)
            self.target(node.target)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.expression(node.value)
                self.target(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expression(node.iter)
            self.target(node.target)
            self.loop(node.body, node.orelse)
        elif isinstance(node, ast.While):
            self.expression(node.test)
            self.loop(node.body, node.orelse)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    self.names.opaque = True
                else:
                    self.bind(alias.asname or alias.name.partition(".")[0])
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expression(item.context_expr)
                if item.optional_vars is not None:
                    self.target(item.optional_vars)
            self.statements(node.body)
        elif isinstance(node, _TRY):
            self.try_(node)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.use(target.id)
                    self.names.deletes.add(target.id)
                    self.names.defines.discard(target.id)
                    self.bound.discard(target.id)
                else:
                    self.expression(target)
        elif isinstance(node, ast.Global):
            pass  # at the top level, a no-op
        else:
            # if, match, return, raise, assert, expressions: children in source order
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    self.statement(child)
                elif isinstance(child, ast.expr):
                    self.expression(child)
                elif isinstance(child, ast.match_case):
                    self.match_case(child)
                elif isinstance(child, ast.ExceptHandler):
                    self.statements(child.body)

    def loop(self, body: list[ast.stmt], orelse: list[ast.stmt]) -> None:
        """A loop body may read, on its second pass, what it binds further down."""
        for name in _bound_in(body):
            self.bind(name)
        self.statements(body)
        self.statements(orelse)

    def try_(self, node: ast.Try) -> None:
        guards = any(_catches_name_error(handler) for handler in node.handlers)
        self.guarded += guards
        self.statements(node.body)
        self.guarded -= guards
        for handler in node.handlers:
            if handler.type is not None:
                self.expression(handler.type)
            if handler.name:
                self.bind(handler.name)
            self.statements(handler.body)
        self.statements(node.orelse)
        self.statements(node.finalbody)

    def match_case(self, case: ast.match_case) -> None:
        for node in ast.walk(case.pattern):
            if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                self.bind(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                self.bind(node.rest)
            elif isinstance(node, ast.MatchValue):
                self.expression(node.value)
            elif isinstance(node, ast.MatchClass):
                self.expression(node.cls)
        if case.guard is not None:
            self.expression(case.guard)
        self.statements(case.body)

    def class_body(self, node: ast.ClassDef) -> None:
        """A class body runs now, in its own namespace; its methods run later."""
        own: set[str] = set()
        for statement in node.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.expressions([*statement.decorator_list, *_defaults(statement.args)])
                self.names.late |= _free_names(statement, self.names)
                own.add(statement.name)
                continue
            reads = CellNames()
            inner = _Reader(reads)
            inner.bound = set(own)
            inner.statement(statement)
            own |= reads.defines | inner.bound
            for name in reads.now:
                self.use(name)
            self.names.late |= reads.late
            self.names.opaque |= reads.opaque

    def target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.bind(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.target(element)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        else:  # x[i] = …, x.a = …: reads x, and changes it in place
            self.expression(node)
            base = node
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                base = base.value
            if isinstance(base, ast.Name):
                self.names.mutates.add(base.id)

    def bind(self, name: str) -> None:
        self.bound.add(name)
        self.names.defines.add(name)
        self.names.deletes.discard(name)

    def use(self, name: str) -> None:
        if name not in self.bound and not self.guarded and name not in self.names.now:
            self.names.now.append(name)

    def expressions(self, nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            self.expression(node)

    def expression(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.use(node.id)
            else:
                self.bind(node.id)
        elif isinstance(node, ast.NamedExpr):
            self.expression(node.value)
            self.target(node.target)
        elif isinstance(node, ast.Lambda):
            self.expressions(_defaults(node.args))
            self.names.late |= _free_names(node, self.names)
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            self.comprehension(node)
        else:
            for child in ast.iter_child_nodes(node):
                self.expression(child)

    def comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        """Targets are the comprehension's own; walrus targets leak out, as in Python."""
        own: set[str] = set()
        for index, generator in enumerate(node.generators):
            if index == 0:
                self.expression(generator.iter)
            else:
                self._inside(generator.iter, own)
            own |= {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
            for condition in generator.ifs:
                self._inside(condition, own)
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for part in parts:
            self._inside(part, own)

    def _inside(self, node: ast.expr, own: set[str]) -> None:
        saved = self.bound
        self.bound = saved | own
        self.expression(node)
        leaked = self.bound - saved - own
        self.bound = saved | leaked


_Scope = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _free_names(node: _Scope, names: CellNames) -> set[str]:
    """Names a function (or a class inside one) reads from the notebook when it runs.
    ``global x`` with an assignment inside defines ``x`` for the notebook, once called."""
    local = set() if isinstance(node, ast.ClassDef) else {a.arg for a in _arguments(node.args)}
    body: list[ast.AST] = list(node.body) if isinstance(node.body, list) else [node.body]
    own, nested = _split_scopes(body)
    declared_global: set[str] = set()
    reads: set[str] = set()
    for child in own:
        if isinstance(child, ast.Global):
            declared_global.update(child.names)
        elif isinstance(child, ast.Nonlocal):
            local.update(child.names)
        elif isinstance(child, ast.Name):
            (reads if isinstance(child.ctx, ast.Load) else local).add(child.id)
        elif isinstance(child, ast.alias):
            local.add(child.asname or child.name.partition(".")[0])
        elif isinstance(child, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and child.name:
            local.add(child.name)
    for scope in nested:
        if isinstance(scope, _COMPREHENSIONS):
            reads |= _comprehension_reads(scope)
        else:
            assert isinstance(scope, _Scope)
            reads |= _free_names(scope, names)
            if not isinstance(scope, ast.Lambda):
                local.add(scope.name)
    names.defines |= declared_global & local
    return reads - (local - declared_global)


def _split_scopes(body: list[ast.AST]) -> tuple[list[ast.AST], list[ast.AST]]:
    """The nodes of one scope, and the scopes nested directly in it (whose decorators,
    defaults and bases belong to this one)."""
    own: list[ast.AST] = []
    nested: list[ast.AST] = []
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            nested.append(node)
            stack.extend(_defaults(node.args))
            if not isinstance(node, ast.Lambda):
                stack.extend([*node.decorator_list, *_annotations(node)])
        elif isinstance(node, ast.ClassDef):
            nested.append(node)
            stack.extend([*node.decorator_list, *node.bases, *node.keywords])
        elif isinstance(node, _COMPREHENSIONS):
            nested.append(node)
        else:
            own.append(node)
            stack.extend(ast.iter_child_nodes(node))
    return own, nested


def _comprehension_reads(node: ast.AST) -> set[str]:
    reads, own = set(), set()
    for child in ast.walk(node):
        if isinstance(child, ast.comprehension):
            own |= {n.id for n in ast.walk(child.target) if isinstance(n, ast.Name)}
        elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            reads.add(child.id)
    return reads - own


def _arguments(args: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _defaults(args: ast.arguments) -> list[ast.expr]:
    return [*args.defaults, *(d for d in args.kw_defaults if d is not None)]


def _annotations(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    found = [a.annotation for a in _arguments(node.args) if a.annotation is not None]
    return found + ([node.returns] if node.returns is not None else [])


def _bound_in(body: list[ast.stmt]) -> set[str]:
    return {
        node.id
        for statement in body
        for node in ast.walk(statement)
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)
    }


def _catches_name_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(c, ast.Name) and c.id in NAME_GUARDS for c in caught)
