"""``--nb-html``: one self-contained HTML report, readable from a CI artifact.

Notebooks are rendered by nbconvert's HTML exporter with JupyterLab's template, so they
look as Jupyter shows them; this module only lays out the page around them: a summary
table that sorts and filters, each failing notebook with its failing cell marked, the
failure report and output diffs. Styles are inline and images embedded; the page's
Content-Security-Policy forbids every network request, so a notebook's HTML output
cannot make the report fetch anything either.

nbconvert is imported here only, when a report is written: pytest's start-up does not
pay for it.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_notebook

from ..notebook.io import write_atomically
from . import RunRecord, counts, in_report_order

if TYPE_CHECKING:
    from nbconvert import HTMLExporter

#: The tag (a CSS class ``celltag_<tag>`` in nbconvert's output) marking the failing cell.
FAILED_TAG = "nbharness-failed"
#: No request of any kind leaves the page: styles and scripts inline, images as data.
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; font-src data:"
)
_CELLS_TEMPLATE = "nbharness-cells.html.j2"
_STYLE_TEMPLATE = "nbharness-style.html.j2"
_TEMPLATES = {
    # The lab template's cells without its page (whose head loads require.js and MathJax).
    _CELLS_TEMPLATE: "{%- extends 'base.html.j2' -%}",
    # The lab template's own stylesheets and highlighting, inlined.
    _STYLE_TEMPLATE: (
        "{{ resources.include_css('static/index.css') }}"
        "{{ resources.include_css('static/theme-light.css') }}"
        "{% for css in resources.inlining.css %}<style>{{ css }}</style>{% endfor %}"
    ),
}
_PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; }
table.runs { border-collapse: collapse; margin: 1em 0; }
table.runs th, table.runs td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
table.runs th { cursor: pointer; background: #f3f3f3; }
tr.failed td:nth-child(2), tr.error td:nth-child(2) { color: #b71c1c; font-weight: bold; }
table.runs a, section.run > p a { color: #0b57d0; text-decoration: underline; }
a.anchor-link { display: none; }
section.run { border-top: 2px solid #999; margin-top: 2em; padding-top: 0.5em; }
section.run .jp-Notebook { padding: 0; }
.celltag_nbharness-failed { outline: 3px solid #d32f2f; outline-offset: 2px; }
.celltag_nbharness-failed::before { content: "failing cell"; color: #fff; background: #d32f2f;
  padding: 0 0.5em; font-size: 85%; }
pre.report { background: #fff5f5; border-left: 4px solid #d32f2f; padding: 0.6em;
  white-space: pre-wrap; overflow-wrap: anywhere; }
div.images { display: flex; gap: 2em; }
div.images img { max-width: 45vw; border: 1px solid #ccc; }
pre.diff { background: #f6f8fa; padding: 0.6em; }
pre.diff .add { color: #1b5e20; } pre.diff .del { color: #b71c1c; }
"""
# Sort by a header's column (click again: reverse) and keep the rows that contain the filter.
_PAGE_SCRIPT = """
const table = document.querySelector('table.runs');
const rows = () => Array.from(table.tBodies[0].rows);
document.getElementById('filter').addEventListener('input', (event) => {
  const wanted = event.target.value.toLowerCase();
  rows().forEach((row) => {
    row.hidden = !row.textContent.toLowerCase().includes(wanted);
  });
});
table.querySelectorAll('th').forEach((th, column) => th.addEventListener('click', () => {
  const up = th.dataset.order !== 'up';
  th.dataset.order = up ? 'up' : 'down';
  const key = (row) => row.cells[column].dataset.key ?? row.cells[column].textContent;
  const sorted = rows().sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    const order = isNaN(x) || isNaN(y) ? x.localeCompare(y) : x - y;
    return up ? order : -order;
  });
  table.tBodies[0].append(...sorted);
}));
"""


def write_report(path: Path, records: list[RunRecord], root: Path, title: str = "") -> None:
    """Write the report for ``records`` to ``path`` (replaced whole, never half-written);
    ``NotWritten`` when the disk refuses it."""
    write_atomically(path, render_report(records, root, path.parent, title))


def render_report(records: list[RunRecord], root: Path, report_dir: Path, title: str = "") -> str:
    """The page: counts, the summary table, then every rendered notebook."""
    ordered = in_report_order(records)
    exporter = _exporter()
    style = _render(exporter, _STYLE_TEMPLATE, new_notebook())
    title = title or "Notebook test report"
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts(records))
    sections = [
        _section(number, record, exporter, root, report_dir)
        for number, record in enumerate(ordered)
        if record.executed or record.failing
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
            f"<title>{escape(title)}</title>",
            style,
            f"<style>{_PAGE_STYLE}</style>",
            "</head><body>",
            f"<h1>{escape(title)}</h1>",
            f"<p class='counts'>{escape(tally)}</p>",
            '<input id="filter" type="search" placeholder="filter rows" size="40">',
            _summary_table(ordered, root, report_dir),
            *sections,
            f"<script>{_PAGE_SCRIPT}</script>",
            "</body></html>",
        ]
    )


def _summary_table(records: list[RunRecord], root: Path, report_dir: Path) -> str:
    head = "".join(
        f"<th>{name}</th>" for name in ("notebook", "outcome", "time", "run", "reason", "executed")
    )
    rows = []
    for number, record in enumerate(records):
        rendered = bool(record.executed) or record.failing
        name = escape(record.title)
        notebook = f'<a href="#run-{number}">{name}</a>' if rendered else name
        reason = escape(record.reason)
        if record.failed_cell is not None and record.executed:
            reason = f'<a href="#cell-id={_failed_id(number)}">{reason}</a>'
        ran = "cached" if record.cached else ("—" if record.outcome == "skipped" else "ran")
        cells = [
            f"<td>{notebook}</td>",
            f"<td>{escape(record.outcome)}</td>",
            f'<td data-key="{record.duration:.3f}">{record.duration:.2f} s</td>',
            f"<td>{ran}</td>",
            f"<td>{reason}</td>",
            f"<td>{_executed_link(record, root, report_dir)}</td>",
        ]
        rows.append(f'<tr class="{escape(record.outcome)}">{"".join(cells)}</tr>')
    return (
        f'<table class="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _section(
    number: int, record: RunRecord, exporter: HTMLExporter, root: Path, report_dir: Path
) -> str:
    """One notebook: headline, reason, the notebook as Jupyter shows it, report, diffs."""
    parts = [
        f'<section class="run {escape(record.outcome)}" id="run-{number}">',
        f"<h2>{escape(record.title)}: {escape(record.outcome)}</h2>",
    ]
    if record.reason:
        parts.append(f"<p class='reason'>{escape(record.reason)}</p>")
    where = [f"notebook <code>{escape(record.notebook)}</code>"]
    if record.script:
        where.append(f"paired script <code>{escape(record.script)}:{record.line}</code>")
    link = _executed_link(record, root, report_dir)
    if link:
        where.append(f"executed copy {link}")
    parts.append(f"<p>{'; '.join(where)}</p>")
    if record.executed:
        nb = nbformat.reads(record.executed, as_version=4)
        _mark_failed_cell(nb, record.failed_cell, _failed_id(number))
        cells = _render(exporter, _CELLS_TEMPLATE, nb)
        parts.append(
            '<div class="jp-Notebook" data-jp-theme-light="true" '
            f'data-jp-theme-name="JupyterLab Light">{cells}</div>'
        )
    if record.report:
        parts += ["<h3>Failure</h3>", f'<pre class="report">{escape(record.report)}</pre>']
    for where_diff, lines in record.diffs:
        parts += [f"<h3>Output differences in {escape(where_diff)}</h3>", _diff(lines)]
    for where_images, stored, fresh in record.images:
        parts += [
            f"<h3>Images in {escape(where_images)}</h3>",
            '<div class="images">',
            _figure("stored", stored),
            _figure("fresh", fresh),
            "</div>",
        ]
    parts.append("</section>")
    return "\n".join(parts)


def _figure(caption: str, images: list[str]) -> str:
    shown = "".join(f'<img src="{escape(url)}" alt="{caption} image">' for url in images)
    return f"<figure>{shown or '(no image)'}<figcaption>{caption}</figcaption></figure>"


def _diff(lines: list[str]) -> str:
    """A unified diff, added and removed lines coloured."""
    shown = []
    for line in lines:
        kind = "add" if line.startswith("+") else "del" if line.startswith("-") else ""
        text = escape(line)
        shown.append(f'<span class="{kind}">{text}</span>' if kind else text)
    return f'<pre class="diff">{chr(10).join(shown)}</pre>'


def _mark_failed_cell(nb: NotebookNode, index: int | None, cell_id: str) -> None:
    """Tag the failing cell (nbconvert turns tags into CSS classes) and give it the id the
    summary links to; other cells' ids get the section's prefix, unique on the page."""
    for n, cell in enumerate(nb.cells):
        if n == index:
            cell.setdefault("metadata", {}).setdefault("tags", []).append(FAILED_TAG)
            cell["id"] = cell_id
        elif "id" in cell:
            cell["id"] = f"{cell_id}-{n}"


def _failed_id(number: int) -> str:
    return f"run-{number}-failed"


def _executed_link(record: RunRecord, root: Path, report_dir: Path) -> str:
    """A link to the ``--nb-output-dir`` copy, relative to the report so both can move."""
    if not record.executed_path:
        return ""
    target = os.path.relpath(root / record.executed_path, report_dir)
    return f'<a href="{escape(Path(target).as_posix())}">{escape(Path(target).name)}</a>'


def _exporter() -> HTMLExporter:
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(  # type: ignore[no-untyped-call]
        template_name="lab", embed_images=True, extra_loaders=[DictLoader(_TEMPLATES)]
    )


def _render(exporter: HTMLExporter, template: str, nb: NotebookNode) -> str:
    exporter.template_file = template
    html, _ = exporter.from_notebook_node(nb)
    return html
