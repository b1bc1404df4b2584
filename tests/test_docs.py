"""The docs say what the code does: every option, the two commands, links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nbharness.plugin.options import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
MAIN_JOB = "python3 -m pip install -e . && python3 -m pytest --nb examples/"
TEST_SUITE = "python3 -m pip install nox && python3 -m nox -s tests"


def table_rows(text: str, first_header: str) -> list[list[str]]:
    """The rows of every markdown table whose first header cell is ``first_header``."""
    rows: list[list[str]] = []
    in_table = False
    for line in text.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and cells[0] == first_header:
            in_table = True
        elif in_table and not set(cells[0]) <= {"-", " "}:
            rows.append(cells)
    return rows


def test_the_options_page_lists_every_flag_with_its_ini_key():
    rows = table_rows((ROOT / "docs" / "options.md").read_text(encoding="utf-8"), "flag")
    documented: dict[str, str | None] = {}
    for flag_cell, ini_cell, *_ in rows:
        spelled = re.match(r"`(--nb[\w-]*(?:=strict)?)", flag_cell)
        assert spelled, f"not a flag: {flag_cell}"
        ini = re.match(r"`(nb_\w+)`", ini_cell)
        documented[spelled.group(1)] = ini.group(1) if ini else None
    registered = {option.flag: option.name if option.ini else None for option in OPTIONS}
    # --nb-compare=strict sets the same ini key's value that --nb-compare does.
    registered["--nb-compare=strict"] = "nb_compare"
    assert documented == registered


def test_the_readme_gives_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert MAIN_JOB in readme
    assert TEST_SUITE in readme
    assert TEST_SUITE in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_local_link_resolves(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address: not checked offline
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
