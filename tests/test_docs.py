"""The docs say what the code does: every option, the two commands, links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from nbharness.cli import main
from nbharness.plugin.options import OPTIONS

from .helpers import build_notebook, kernels_exit_at_start

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


def quoted_messages(page: str) -> list[str]:
    """The messages a docs page quotes in its "what you see" or "message" tables."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    found = []
    for header in ("what you see", "message"):
        for line in text.splitlines():
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            if cells and cells[-1] == header:
                found += [row[-1] for row in table_rows(text, cells[0]) if row[-1].startswith("`")]
    return [re.match(r"`([^`]+)`", message).group(1) for message in found]  # type: ignore[union-attr]


def as_pattern(message: str) -> re.Pattern[str]:
    """A quoted message as a pattern: its numbers stand for any number, ``…`` for anything."""
    escaped = re.escape(message).replace("…", ".*")
    return re.compile(re.sub(r"\d+(?:\\\.\d+)?", r"\\d+(?:\\.\\d+)?", escaped))


def assert_printed(messages: list[str], output: str) -> None:
    missing = [m for m in messages if not as_pattern(m).search(output)]
    assert not missing, "quoted in the docs but not printed:\n" + "\n".join(missing)


def test_the_problems_the_testing_page_quotes_are_what_a_run_prints(
    pytester, make_notebook, write_raw
):
    make_notebook("hangs.ipynb", ["import time\ntime.sleep(60)"])
    # The pause lets the kernel announce the cell's In [n] before it dies.
    make_notebook("dies.ipynb", ["x = 1", "import os, time\ntime.sleep(0.5)\nos._exit(1)"])
    make_notebook("asks.ipynb", ["input()"])
    nb = make_notebook("julia.ipynb", ["1"])
    spec = {"name": "julia-1.9", "display_name": "Julia 1.9", "language": "julia"}
    nb.write_text(nb.read_text().replace('"name": "python3"', f'"name": "{spec["name"]}"'))
    (pytester.path / "data").mkdir()
    write_raw("data/bad.ipynb", '{"cells": x}')
    make_notebook("chatty.ipynb", ["print('x' * 3_000_000)\n1 / 0"])
    result = pytester.runpytest("--nb", "--nb-timeout", "2", "-rA")
    for path in pytester.path.glob("*.ipynb"):
        path.unlink()
    make_notebook("elsewhere.ipynb", ["1"])
    elsewhere = pytester.runpytest("--nb", "--nb-cwd", "/data/run")
    kernels_exit_at_start(pytester.path / "ipython")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IPYTHONDIR", str(pytester.path / "ipython"))
        unlicensed = pytester.runpytest("--nb")
    messages = quoted_messages("testing.md")
    assert len(messages) >= 8
    printed = [run.stdout.str() for run in (result, elsewhere, unlicensed)]
    assert_printed(messages, "".join(printed))


def test_the_order_lint_messages_the_docs_quote_are_what_check_prints(tmp_path, capsys):
    def code(count, outputs=()):
        return {"source": "x", "count": count, "outputs": list(outputs)}

    result = {"output_type": "execute_result", "execution_count": 7, "data": {}, "metadata": {}}
    stream = {"output_type": "stream", "name": "stdout", "text": "x\n"}
    stored = {
        "ran_before": [code(1), code(3), code(2)],
        "ran_after": [code(5), code(2), code(3), code(4)],
        "twice": [code(1), code(1)],
        "jump": [code(1), code(2), code(3), code(6)],
        "late_start": [code(4), code(5)],
        "no_count": [code(1), code(None, [stream])],
        "stale_result": [code(1), code(2, [result])],
        "not_run": [code(1), code(None), code(2)],
    }
    for name, cells in stored.items():
        nbformat.write(build_notebook(cells), tmp_path / f"{name}.ipynb")
    assert main(["check", "--order", str(tmp_path)]) == 1
    messages = quoted_messages("hidden-state.md")
    assert len(messages) >= len(stored)
    assert_printed(messages, capsys.readouterr().out)


def test_the_failure_the_readme_shows_is_what_a_run_prints(pytester, make_notebook):
    make_notebook(
        "broken.ipynb",
        [
            "def ratio(a, b):\n    return a / b",
            {"markdown": "Now divide."},
            "x = 1\ny = ratio(x, 0)\nprint('unreached')",
        ],
    )
    printed = pytester.runpytest("--nb").stdout.lines
    start = printed.index("cell 3 (In [2]) raised ZeroDivisionError: division by zero")
    end = printed.index("ZeroDivisionError: division by zero", start)
    report = "\n".join(line.rstrip() for line in printed[start : end + 1])
    for page in ("README.md", "docs/testing.md"):
        assert report in (ROOT / page).read_text(encoding="utf-8"), page


def test_the_layout_map_names_every_module_and_only_modules_that_exist():
    text = (ROOT / "docs" / "CONTRIBUTING.md").read_text(encoding="utf-8")
    mapped = set(re.findall(r"^\| `(nbharness/[\w/]+\.py)` \|", text, re.MULTILINE))
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "nbharness").rglob("*.py")}
    packages = {m for m in modules if m.endswith("/__init__.py") and m.count("/") > 1}
    assert mapped == modules - (packages - mapped)
