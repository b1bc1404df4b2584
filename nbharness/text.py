"""Small text helpers that every stage needs, each written once."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def cell_text(value: object) -> str:
    """nbformat's multiline string as one string: on disk a source (or an output's text)
    may be a list of lines, and a notebook read as raw JSON keeps it so."""
    return "".join(value) if isinstance(value, list) else str(value)


def first_line(text: str, default: str = "") -> str:
    """The first line of ``text`` once blank lines and surrounding spaces are dropped."""
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else default


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)
