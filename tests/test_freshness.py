"""The freshness record: written by --nb-update-outputs, read by `nbharness check --fresh`."""

from __future__ import annotations

import json

import git
import nbformat
import pytest

from nbharness.cli import main
from nbharness.verify.freshness import RECORD_KEY, freshness_findings, freshness_record

from .helpers import build_notebook, expect

SOURCES = [
    "import math\nradius = 2",  # cell 1
    "area = math.pi * radius ** 2\nprint(round(area, 1))",  # cell 2: reads cell 1
    "greeting = 'hello'\nprint(greeting)",  # cell 3: independent
    "print(area * 2 > 0)",  # cell 4: reads cell 2, so cell 1 too
    "total = area",  # cell 5: reads cell 2, shows nothing
]


def stdout(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def recorded(sources=SOURCES):
    """A notebook as JSON that has just been stored with its record, as after a run."""
    outputs = {1: [stdout("12.6\n")], 2: [stdout("hello\n")], 3: [stdout("True\n")]}
    cells = [
        {"source": source, "count": index + 1, "outputs": outputs.get(index, [])}
        for index, source in enumerate(sources)
    ]
    raw = json.loads(nbformat.writes(build_notebook([{"markdown": "# Area"}, *cells])))
    ran = {"language_info": {"name": "python", "version": "3.11.7"}}
    raw["metadata"]["nbharness"] = {RECORD_KEY: freshness_record(raw, ran)}
    return raw


def coded(raw):
    return [finding.coded for finding in freshness_findings(raw)]


def test_an_untouched_notebook_is_fresh():
    raw = recorded()
    assert coded(raw) == []
    assert raw["metadata"]["nbharness"][RECORD_KEY]["python"] == "3.11.7"


def test_saved_again_by_jupyter_it_is_still_fresh():
    """Jupyter stores multiline text as a list of lines: the record must not mind."""
    raw = recorded()
    resaved = json.loads(nbformat.writes(nbformat.reads(json.dumps(raw), as_version=4)))
    assert resaved["cells"][2]["outputs"][0]["text"] == ["12.6\n"]
    assert coded(resaved) == []


def test_an_edited_cell_names_itself_and_exactly_the_cells_whose_outputs_depend_on_it():
    raw = recorded()
    raw["cells"][1]["source"] = "import math\nradius = 3"
    assert coded(raw) == [
        "cell 2 (In [1]) NBH302 was edited after the outputs were stored",
        "cell 3 (In [2]) NBH303 shows results computed from an earlier version of cell 2",
        "cell 5 (In [4]) NBH303 shows results computed from an earlier version of cell 2",
    ]


def test_an_edit_to_an_independent_cell_leaves_the_others_alone():
    raw = recorded()
    raw["cells"][3]["source"] = "greeting = 'hi'\nprint(greeting)"
    assert coded(raw) == ["cell 4 (In [3]) NBH302 was edited after the outputs were stored"]


def test_added_and_deleted_cells():
    raw = recorded()
    raw["cells"].insert(2, nbformat.v4.new_code_cell("radius = 5"))
    assert coded(raw)[:2] == [
        "cell 3 NBH302 was added after the outputs were stored",
        "cell 4 (In [2]) NBH303 shows results computed from an earlier version of cell 3",
    ]
    raw = recorded()
    del raw["cells"][3]  # cell 3 (greeting) goes
    assert coded(raw) == [
        "cell 4 (In [4]) NBH302 follows 1 cell deleted after the outputs were stored"
    ]
    raw = recorded()
    del raw["cells"][-1]  # the last cell: no output above can show its results
    assert coded(raw) == []


def test_outputs_changed_by_hand_and_another_kernel():
    raw = recorded()
    raw["cells"][4]["outputs"] = [stdout("False\n")]
    raw["metadata"]["kernelspec"]["name"] = "other"
    assert coded(raw) == [
        "NBH305 the record is for kernel 'python3', the notebook asks for 'other'",
        "cell 5 (In [4]) NBH304 has outputs that are not those of the recorded run "
        "(re-run or edited by hand)",
    ]


def test_a_notebook_without_a_record_says_so_in_one_line(tmp_path, capsys):
    nbformat.write(build_notebook(["x = 1"]), tmp_path / "plain.ipynb")
    assert main(["check", "--fresh", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'plain.ipynb'}: NBH301 has no freshness record "
        "(pytest --nb --nb-update-outputs writes one)"
    ]


@pytest.mark.slow
def test_update_outputs_writes_a_record_that_survives_a_clone_and_catches_an_edit(
    pytester, make_notebook, tmp_path_factory, capsys
):
    path = make_notebook("area.ipynb", SOURCES)
    pytester.runpytest("--nb", "--nb-update-outputs").assert_outcomes(passed=1)
    assert main(["check", "--fresh", "--dataflow", "--order", str(path)]) == 0
    with git.Repo.init(pytester.path) as repo:
        repo.index.add(["area.ipynb"])
        repo.index.commit("outputs and their record")
        clone = tmp_path_factory.mktemp("clone") / "repo"
        git.Repo.clone_from(pytester.path, clone).close()
    assert main(["check", "--fresh", str(clone / "area.ipynb")]) == 0
    fresh = pytester.runpytest("--nb", "--nb-check-fresh", "-k", "fresh", "-v")
    expect(fresh.stdout, ["area.ipynb::fresh PASSED*"])
    again = pytester.runpytest("--nb", "--nb-update-outputs")
    assert "outputs updated" not in again.stdout.str()  # the record does not churn
    raw = json.loads(path.read_text())
    raw["cells"][0]["source"] = "import math\nradius = 3"
    path.write_text(json.dumps(raw))
    capsys.readouterr()
    stale_item = pytester.runpytest("--nb", "--nb-check-fresh", "-k", "fresh")
    stale_item.assert_outcomes(failed=1)
    expect(
        stale_item.stdout,
        [
            "*_ area.ipynb (freshness) _*",
            "stored outputs not proven fresh: cell 1 (In [1]) NBH302 was edited after the "
            "outputs were stored (and 2 more)",
        ],
    )
    capsys.readouterr()
    assert main(["check", "--fresh", str(path)]) == 1
    stale = "NBH303 shows results computed from an earlier version of cell 1"
    assert capsys.readouterr().out.splitlines() == [
        "area.ipynb: cell 1 (In [1]) NBH302 was edited after the outputs were stored",
        f"area.ipynb: cell 2 (In [2]) {stale}",
        f"area.ipynb: cell 4 (In [4]) {stale}",
    ]


def test_sync_keeps_the_record_for_unchanged_cells(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool.nbharness]\npairing = "py:percent"\n')
    (tmp_path / "area.ipynb").write_text(json.dumps(recorded()))
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "."]) == 0
    assert main(["check", "--fresh", "area.ipynb"]) == 0
    script = tmp_path / "area.py"
    script.write_text(script.read_text().replace("greeting = 'hello'", "greeting = 'hi'"))
    assert main(["sync", "."]) == 0
    capsys.readouterr()
    assert main(["check", "--fresh", "area.ipynb"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "area.ipynb: cell 4 NBH302 was edited after the outputs were stored"
    ]


def test_the_lines_the_docs_quote_are_what_the_command_prints(tmp_path, capsys):
    from .test_docs import ROOT, as_pattern, table_rows

    text = (ROOT / "docs" / "hidden-state.md").read_text(encoding="utf-8")
    quoted = [
        row[-1].strip("`") for header in ("rule", "state") for row in table_rows(text, header)
    ]
    assert len(quoted) >= 11
    dataflow = ["print(x)", "x = 1", "print(ghost)", "def f():\n    return summary"]
    dataflow += ["df = 1", "print(df)", "df = 2", "del df", "df"]
    counted = [{"source": source, "count": n} for n, source in enumerate(dataflow, start=1)]
    nbformat.write(build_notebook(counted), tmp_path / "dataflow.ipynb")
    nbformat.write(build_notebook(["x = 1"]), tmp_path / "none.ipynb")
    edited, added, by_hand = recorded(), recorded(), recorded()
    edited["cells"][1]["source"] = "import math\nradius = 3"
    added["cells"].insert(2, nbformat.v4.new_code_cell("radius = 5"))
    by_hand["cells"][4]["outputs"] = [stdout("False\n")]
    by_hand["metadata"]["kernelspec"]["name"] = "other"
    by_hand["metadata"]["nbharness"][RECORD_KEY]["inputs"] = {"data/table.csv": "0" * 16}
    for name, raw in {"edited": edited, "added": added, "by_hand": by_hand}.items():
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(raw))
    main(["check", "--dataflow", "--fresh", "--select", "NBH1,NBH103,NBH3", str(tmp_path)])
    printed = capsys.readouterr().out
    missing = [line for line in quoted if not as_pattern(line).search(printed)]
    assert not missing, printed


def test_the_record_holds_the_files_the_run_read_and_names_one_that_changed(tmp_path, capsys):
    from nbharness.verify.compare import CompareSettings
    from nbharness.verify.outputs import store_outputs

    (tmp_path / "data").mkdir()
    table = tmp_path / "data" / "table.csv"
    table.write_text("a,b\n1,2\n")
    path = tmp_path / "reads.ipynb"
    nbformat.write(build_notebook(["rows = open('data/table.csv').read()"]), path)
    nb = nbformat.read(path, as_version=4)
    assert store_outputs(path, nb, nb, CompareSettings(), inputs=[table])
    record = json.loads(path.read_text())["metadata"]["nbharness"][RECORD_KEY]
    assert list(record["inputs"]) == ["data/table.csv"]
    assert main(["check", "--fresh", str(path)]) == 0
    table.write_text("a,b\n1,3\n")
    assert main(["check", "--fresh", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: NBH306 the run read data/table.csv, which changed since the outputs were stored"
    ]


@pytest.mark.slow
def test_a_run_records_the_files_it_read_and_check_fresh_names_one_that_changed(
    pytester, make_notebook, capsys
):
    """Nothing declared: the kernel's traced reads go into the record --nb-update-outputs writes."""
    (pytester.path / "table.csv").write_text("a,b\n1,2\n")
    path = make_notebook("reads.ipynb", ["rows = open('table.csv').read()\nprint(len(rows))"])
    pytester.runpytest("--nb", "--nb-update-outputs").assert_outcomes(passed=1)
    record = json.loads(path.read_text())["metadata"]["nbharness"][RECORD_KEY]
    assert list(record["inputs"]) == ["table.csv"]
    assert main(["check", "--fresh", str(path)]) == 0
    (pytester.path / "table.csv").write_text("a,b\n1,3\n")
    capsys.readouterr()
    assert main(["check", "--fresh", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "reads.ipynb: NBH306 the run read table.csv, which changed since the outputs were stored"
    ]


@pytest.mark.parametrize(
    "damage",
    [
        lambda md: md.update(nbharness=["not", "a", "table"]),
        lambda md: md["nbharness"][RECORD_KEY].update(cells=[1, [2], "x"], kernel=None),
        lambda md: md["nbharness"][RECORD_KEY].update(inputs={"": 1, "a.csv": None}),
    ],
    ids=["metadata", "cells", "inputs"],
)
def test_a_damaged_record_is_findings_not_a_traceback(tmp_path, capsys, damage):
    raw = recorded()
    damage(raw["metadata"])
    (tmp_path / "odd.ipynb").write_text(json.dumps(raw))
    assert main(["check", "--fresh", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    assert all(line.startswith(f"{tmp_path / 'odd.ipynb'}: ") for line in out.splitlines())
