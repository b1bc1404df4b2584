"""Output regression: do a fresh run's outputs match the ones stored in the notebook?

Each code cell's outputs become comparable text (streams, text and JSON data, errors,
images by content hash), noise is replaced by the sanitizers, and a difference is shown
as a unified diff of that text.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import NbHarnessError
from ..notebook.cellmarks import SKIP, output_choice
from ..text import cell_text, strip_ansi

#: Noise in most notebooks' outputs, replaced before comparing (``default_sanitizers``).
DEFAULT_SANITIZERS: tuple[tuple[str, str], ...] = (
    (r"\b0x[0-9a-fA-F]{6,}\b", "0xADDRESS"),  # <object at 0x7f3a...>
    (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "DATETIME"),
    (r"(CPU times|Wall time):[^\n]*", r"\1: TIME"),  # %time
    (r"[\d.]+ [mµun]?s ± [\d.]+ [mµun]?s per loop[^\n]*", "TIMEIT"),  # %timeit
)
#: MIME types compared as text; images are compared by hash (or not at all).
TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")
IMAGE_PREFIX = "image/"
#: A longer diff is cut: the executed notebook (``--nb-output-dir``) has the rest.
MAX_DIFF_LINES = 60
MAX_LINE = 200


@dataclass(frozen=True)
class CompareSettings:
    """How outputs are compared: one per project, used by ``--nb-compare``, nbval's
    check-output cells and ``--nb-update-outputs`` alike."""

    sanitizers: tuple[tuple[re.Pattern[str], str], ...] = field(
        default_factory=lambda: compile_sanitizers(DEFAULT_SANITIZERS, "defaults")
    )
    #: "hash": an image must be byte-identical; "skip": images are not compared. As nbval,
    #: skipped by default: a plotting library's update changes every PNG's bytes.
    images: str = "skip"
    #: Compare cells that have no stored outputs too (they must stay empty).
    strict: bool = False
    #: Every cell is compared (``--nb-compare``); else only cells marked check-output.
    enabled: bool = False

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any], where: str, mode: str | None = None
    ) -> CompareSettings:
        """From ``[tool.nbharness.compare]`` (its types already checked) and a mode:
        ``None`` (off), ``"on"`` or ``"strict"``."""
        rules = compile_sanitizers(table.get("sanitize", []), where)
        if table.get("default_sanitizers", True):
            rules = compile_sanitizers(DEFAULT_SANITIZERS, "defaults") + rules
        return cls(
            sanitizers=rules,
            images=str(table.get("images", "skip")),
            strict=mode == "strict",
            enabled=mode is not None,
        )


class OutputMismatch(NbHarnessError):
    """Fresh outputs differ from the stored ones; ``diffs`` holds one diff per cell."""

    def __init__(self, diffs: list[tuple[str, list[str]]]) -> None:
        super().__init__(diffs)
        self.diffs = diffs

    @property
    def summary(self) -> str:
        where = [name for name, _ in self.diffs]
        shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        return f"outputs differ from the stored ones in {shown}"

    def details(self) -> list[str]:
        lines = ["(--- stored, +++ fresh; --nb-update-outputs stores the fresh ones)"]
        for name, diff in self.diffs:
            lines += ["", f"{name[0].upper()}{name[1:]}:", *diff]
        return lines


def compile_sanitizers(
    pairs: Sequence[Sequence[str]], where: str
) -> tuple[tuple[re.Pattern[str], str], ...]:
    compiled = []
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(part, str) for part in pair):
            raise NbHarnessError(
                f"{where}: a sanitizer is a [pattern, replacement] pair, not {pair!r}"
            )
        try:
            compiled.append((re.compile(pair[0]), pair[1]))
        except re.error as exc:
            raise NbHarnessError(f"{where}: bad sanitizer pattern {pair[0]!r}: {exc}") from None
    return tuple(compiled)


def compare_outputs(
    stored: Sequence[Mapping[str, Any]],
    fresh: Sequence[Mapping[str, Any]],
    settings: CompareSettings,
    only_marked: bool = False,
    ignore: Sequence[str] = (),
    replace: Sequence[Sequence[str]] = (),
) -> OutputMismatch | None:
    """Compare two versions of the same cells; ``None`` when every compared cell matches.

    ``only_marked`` compares just the cells marked to be checked (nbval's lax mode);
    ``ignore`` and ``replace`` hold pytest-notebook's notebook-level ``nbreg.diff_ignore``
    paths and ``nbreg.diff_replace`` ``[path, regex, replacement]`` rules.
    """
    diffs = []
    for number, (old, new) in enumerate(zip(stored, fresh, strict=True), start=1):
        if not _compared(old, new, settings) or (only_marked and output_choice(old) is not True):
            continue
        paths = _cell_ignores(old, number - 1, ignore)
        if "/outputs" in paths:
            continue
        rules = _cell_replacements(old, number - 1, replace)
        before = output_text(_replaced(_kept(old.get("outputs", []), paths), rules), settings)
        after = output_text(_replaced(_kept(new.get("outputs", []), paths), rules), settings)
        if before != after:
            count = old.get("execution_count")  # as the stored notebook shows it
            name = f"cell {number}" + (f" (In [{count}])" if count is not None else "")
            diff = difflib.unified_diff(
                before.splitlines(), after.splitlines(), "stored", "fresh", lineterm="", n=2
            )
            diffs.append((name, _capped(list(diff))))
    return OutputMismatch(diffs) if diffs else None


def _cell_ignores(cell: Mapping[str, Any], index: int, notebook_level: Sequence[str]) -> set[str]:
    """pytest-notebook's ``nbreg.diff_ignore`` paths that apply to this cell, relative to
    it (``/outputs/*/data/text/latex``); any output index counts as ``*``."""
    nbreg = cell.get("metadata", {}).get("nbreg") or {}
    paths = list(nbreg.get("diff_ignore", [])) if isinstance(nbreg, Mapping) else []
    for path in notebook_level:
        parts = str(path).split("/", 3)  # "", "cells", index or *, rest
        if len(parts) == 4 and parts[1] == "cells" and parts[2] in ("*", str(index)):
            paths.append("/" + parts[3])
    normalized = {re.sub(r"^/outputs/[^/]+", "/outputs/*", str(p)).rstrip("/") for p in paths}
    if "/outputs/*" in normalized:
        normalized.add("/outputs")  # every output: the whole cell
    return normalized


def _cell_replacements(
    cell: Mapping[str, Any], index: int, notebook_level: Sequence[Sequence[str]]
) -> list[tuple[list[str], re.Pattern[str], str]]:
    """pytest-notebook's ``nbreg.diff_replace`` rules for this cell: the path below the
    cell split in parts (``["outputs", "*", "text"]``), the pattern, the replacement."""
    nbreg = cell.get("metadata", {}).get("nbreg") or {}
    rules = [
        (str(rule[0]), rule[1], rule[2])
        for rule in (nbreg.get("diff_replace", []) if isinstance(nbreg, Mapping) else [])
        if len(rule) == 3
    ]
    for rule in notebook_level:
        parts = str(rule[0]).split("/", 3) if len(rule) == 3 else []
        if len(parts) == 4 and parts[1] == "cells" and parts[2] in ("*", str(index)):
            rules.append(("/" + parts[3], rule[1], rule[2]))
    compiled = []
    for path, pattern, replacement in rules:
        try:
            compiled.append((path.strip("/").split("/"), re.compile(pattern), str(replacement)))
        except (re.error, TypeError) as exc:
            raise NbHarnessError(f"nbreg.diff_replace: bad pattern {pattern!r}: {exc}") from None
    return compiled


def _replaced(
    outputs: Sequence[Mapping[str, Any]], rules: list[tuple[list[str], re.Pattern[str], str]]
) -> list[Any]:
    """The outputs with each rule's pattern replaced in the text its path names."""
    cell: Any = {"outputs": [json.loads(json.dumps(out)) for out in outputs]}
    for parts, pattern, replacement in rules:
        _substitute(cell, parts, pattern, replacement)
    return list(cell["outputs"])


def _substitute(node: Any, parts: list[str], pattern: re.Pattern[str], replacement: str) -> Any:
    if not parts:
        if isinstance(node, str):
            return pattern.sub(replacement, node)
        if isinstance(node, list) and all(isinstance(item, str) for item in node):
            return pattern.sub(replacement, "".join(node))
        if isinstance(node, (dict, list)):  # a whole subtree: every text in it
            keys = node.keys() if isinstance(node, dict) else range(len(node))
            for key in keys:
                node[key] = _substitute(node[key], [], pattern, replacement)
        return node
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        indexes = range(len(node)) if head == "*" else [int(head)] if head.isdigit() else []
        for index in indexes:
            if index < len(node):
                node[index] = _substitute(node[index], rest, pattern, replacement)
    elif isinstance(node, dict):
        if head not in node and rest and f"{head}/{rest[0]}" in node:
            head, rest = f"{head}/{rest[0]}", rest[1:]  # a MIME type: data/text/plain
        for key in list(node) if head == "*" else [head] if head in node else []:
            node[key] = _substitute(node[key], rest, pattern, replacement)
    return node


def _kept(outputs: Sequence[Mapping[str, Any]], paths: set[str]) -> list[Mapping[str, Any]]:
    """The outputs without what ``paths`` ignore: a MIME type, or stream text."""
    mimes = {path.removeprefix("/outputs/*/data/") for path in paths if "/data/" in path}
    kept: list[Mapping[str, Any]] = []
    for out in outputs:
        if out.get("output_type") == "stream" and "/outputs/*/text" in paths:
            continue
        if mimes and "data" in out:
            out = {**out, "data": {k: v for k, v in out["data"].items() if k not in mimes}}
        kept.append(out)
    return kept


def differing_cells(
    stored: Sequence[Mapping[str, Any]],
    fresh: Sequence[Mapping[str, Any]],
    settings: CompareSettings,
) -> set[int]:
    """Indexes of code cells whose outputs differ once sanitized (for snapshot updates)."""
    return {
        index
        for index, (old, new) in enumerate(zip(stored, fresh, strict=True))
        if old.get("cell_type") == "code"
        and output_text(old.get("outputs", []), settings)
        != output_text(new.get("outputs", []), settings)
    }


def _capped(diff: list[str]) -> list[str]:
    """A diff a person can read: at most MAX_DIFF_LINES lines of MAX_LINE characters."""
    shown = [line if len(line) <= MAX_LINE else line[:MAX_LINE] + " …" for line in diff]
    if len(shown) > MAX_DIFF_LINES:
        hidden = len(shown) - MAX_DIFF_LINES
        shown = [*shown[:MAX_DIFF_LINES], f"… {hidden} more diff lines (see --nb-output-dir)"]
    return shown


def _compared(old: Mapping[str, Any], new: Mapping[str, Any], settings: CompareSettings) -> bool:
    if old.get("cell_type") != "code" or new.get("execution_count") is None:
        return False  # markdown, or not run this time (skip-execution, after sys.exit(0))
    if SKIP.on(old) or output_choice(old) is False:
        return False
    # As nbval does: a cell that ran (has a count) claims its outputs, even none at all.
    return settings.strict or bool(old.get("outputs")) or old.get("execution_count") is not None


def output_text(outputs: Sequence[Mapping[str, Any]], settings: CompareSettings) -> str:
    """The outputs as comparable text: one labelled block per stream, MIME type or error.

    Each stream is compared as a whole, as a terminal would end up showing it (carriage
    returns applied, colour codes removed): how stdout and stderr chunks interleave is
    timing, not content.
    """
    streams: dict[str, str] = {}
    blocks: list[tuple[str, str]] = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            name = out.get("name", "stdout")
            streams[name] = streams.get(name, "") + cell_text(out.get("text", ""))
        elif kind == "error":
            blocks.append(("[error]", f"{out.get('ename', '')}: {out.get('evalue', '')}\n"))
        elif kind in ("execute_result", "display_data"):
            blocks += _data_blocks(out.get("data", {}), settings)
    in_order = sorted(streams.items(), key=lambda item: (item[0] != "stdout", item[0]))
    blocks = [(f"[{name}]", _as_shown(text)) for name, text in in_order] + blocks
    text = "".join(
        f"{label}\n{body if body.endswith(chr(10)) else body + chr(10)}" for label, body in blocks
    )
    for pattern, replacement in settings.sanitizers:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def _data_blocks(data: Mapping[str, Any], settings: CompareSettings) -> list[tuple[str, str]]:
    blocks = []
    for mime in sorted(data):
        value = data[mime]
        if mime in TEXT_TYPES:
            body = (
                json.dumps(value, sort_keys=True, indent=1)
                if mime == "application/json"
                else cell_text(value)
            )
            blocks.append((f"[{mime}]", body))
        elif mime.startswith(IMAGE_PREFIX) and settings.images == "hash":
            digest = hashlib.sha256(cell_text(value).strip().encode()).hexdigest()[:16]
            blocks.append((f"[{mime}]", f"sha256:{digest}"))
    return blocks


def _as_shown(text: str) -> str:
    """Stream text as a terminal ends up showing it: ``\\r`` rewrites, no colour codes."""
    text = strip_ansi(text)
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
