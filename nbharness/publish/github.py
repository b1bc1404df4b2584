"""GitHub Actions: ``::error`` annotations on the failing line, and the step summary.

An annotation on the paired script's line sits on the pull request's diff, where a
reviewer can comment; a notebook's JSON lines mean nothing there, so without a script
the annotation names the notebook and its summary names the cell.
"""

from __future__ import annotations

from . import RunRecord, counts, in_report_order


def escape_data(text: str) -> str:
    """A workflow command's message: GitHub reads ``%``, CR and LF as escapes."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: also ``:`` and ``,``, which end it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(record: RunRecord, prefix: str = "") -> str | None:
    """The ``::error`` line for a failed run, or ``None`` for any other outcome.

    ``prefix`` is the rootdir's path inside the repository ("" when they are the
    same), since GitHub resolves ``file`` from the repository's root.
    """
    if not record.failing:
        return None
    path = record.script or record.notebook
    properties = [f"file={escape_property(prefix + path)}"]
    if record.script and record.line is not None:
        properties.append(f"line={record.line}")
    properties.append(f"title={escape_property(record.title)}")
    return f"::error {','.join(properties)}::{escape_data(record.reason or record.outcome)}"


def step_summary(records: list[RunRecord]) -> str:
    """A markdown table of every run, failures first, with the counts above it."""
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts(records))
    lines = [
        f"### Notebooks: {tally}",
        "",
        "| notebook | outcome | time | cached or ran | reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in in_report_order(records):
        ran = "cached" if record.cached else ("ran" if record.outcome != "skipped" else "—")
        cells = [
            f"`{record.title}`",
            record.outcome,
            f"{record.duration:.2f} s",
            ran,
            record.reason,
        ]
        lines.append("| " + " | ".join(_table_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _table_cell(text: str) -> str:
    """One line of text that cannot end a markdown table's cell early."""
    return " ".join(text.split()).replace("|", "\\|")
