"""Reading notebooks: a file valid as nbformat 4.5 is read without nbformat, and what comes
out is exactly what nbformat gives; every other file goes through nbformat as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbharness.notebook import schema
from nbharness.notebook.io import load_notebook, read_notebook


def _stored(tmp_path: Path, content: dict[str, Any], name: str = "nb.ipynb") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content, indent=1), encoding="utf-8")
    return path


def rich_notebook() -> dict[str, Any]:
    """What Jupyter writes: sources and texts split in lines, outputs of every kind,
    an attachment, and the transient keys nbformat drops when it reads."""
    code = new_code_cell("import sys\nprint('a')\nprint('b')", execution_count=1)
    data = {"text/plain": "1\n2", "image/png": "iVBO"}
    code.outputs = [
        new_output("stream", name="stdout", text="a\nb\n"),
        new_output("execute_result", data, execution_count=1),
        new_output("error", ename="E", evalue="v", traceback=["line 1", "line 2"]),
    ]
    code.metadata["trusted"] = True
    markdown = new_markdown_cell("# Title\n\n![x](attachment:x.png)")
    markdown["attachments"] = {"x.png": {"image/png": "iVBO"}}
    nb = new_notebook(cells=[markdown, code, new_code_cell("")], metadata={"signature": "s"})
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for n, cell in enumerate(nb.cells):
        cell.id = f"cell-{n}"
    text = nbformat.writes(nb)  # splits multi-line strings into lists, as on disk
    content: dict[str, Any] = json.loads(text)
    content["metadata"]["signature"] = "sha256:abc"  # transient: nbformat's reader drops it
    content["cells"][1]["metadata"]["trusted"] = True
    return content


def test_a_valid_notebook_reads_as_nbformat_reads_it_without_importing_it(tmp_path):
    path = _stored(tmp_path, rich_notebook())
    assert schema.is_valid(json.loads(path.read_text()))
    stored = load_notebook(path)
    assert stored.warning is None
    assert stored.content["cells"][1]["source"] == "import sys\nprint('a')\nprint('b')"
    expected = nbformat.read(path, as_version=4)
    assert stored.node == expected
    assert isinstance(stored.node, nbformat.NotebookNode)
    assert stored.node.cells[1].outputs[0].text == "a\nb\n"
    assert "signature" not in stored.node.metadata
    assert stored.content is stored.node  # one copy of the notebook once the node exists


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda nb: nb.update(nbformat_minor=4), "an older minor version"),
        (lambda nb: nb["cells"][0].pop("id"), "a cell without its id"),
        (lambda nb: nb["cells"][1].update(id="cell-0"), "two cells with one id"),
        (lambda nb: nb["cells"][1].update(execution_count="one"), "a schema error"),
        (lambda nb: nb["metadata"].update(kernelspec={"name": 3}), "invalid metadata"),
        (lambda nb: nb["cells"][0].update(collapsed=True), "a key the schema does not know"),
    ],
    ids=["4.4", "missing-id", "duplicate-id", "schema-error", "bad-metadata", "unknown-key"],
)
def test_what_nbformat_would_repair_or_refuse_goes_through_nbformat(tmp_path, change, why):
    content = rich_notebook()
    change(content)
    assert not schema.is_valid(content), why
    path = _stored(tmp_path, content)
    if why == "a schema error":
        with pytest.raises(Exception, match="schema error at cell 2: execution_count"):
            read_notebook(path)
        return
    node, warning = read_notebook(path)
    ids = [cell.id for cell in node.cells]
    assert len(set(ids)) == len(ids), "nbformat gives every cell a unique id"
    if why in ("invalid metadata", "a key the schema does not know"):
        assert warning is not None
        assert warning.endswith("; ran anyway")


def _python(code: str, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the bytecode cache is what is tested
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
    )


#: Reads the notebooks named and prints, per notebook, whether nbformat found it valid
#: without being imported, and whether nbformat ended up imported.
PROBE = (
    "import sys\n"
    "from pathlib import Path\n"
    "from nbharness.notebook import schema\n"
    "from nbharness.notebook.io import parse_json\n"
    "for name in sys.argv[1:]:\n"
    "    print(schema.is_valid(parse_json(Path(name), Path(name).read_text())))\n"
    "print('nbformat' in sys.modules, 'jsonschema' in sys.modules)\n"
)


def test_the_compiled_schema_is_cached_for_the_next_process(tmp_path):
    good = _stored(tmp_path, rich_notebook(), "good.ipynb")
    cache = tmp_path / "cache"
    assert _python(PROBE, cache, str(good)).stdout.split() == ["True", "False", "False"]
    written = sorted((cache / "nbharness").glob("nbformat_schema_*.py"))
    assert len(written) == 1
    assert not written[0].stat().st_mode & 0o022
    assert _python(PROBE, cache, str(good)).stdout.split() == ["True", "False", "False"]
    assert list((cache / "nbharness" / "__pycache__").glob("nbformat_schema_*.pyc"))


def test_a_cached_schema_others_could_write_is_not_run(tmp_path):
    """A cache file writable by others could say anything: it is not imported."""
    good = _stored(tmp_path, rich_notebook(), "good.ipynb")
    bad = rich_notebook()
    bad["cells"][1]["execution_count"] = "one"
    broken = _stored(tmp_path, bad, "broken.ipynb")
    cache = tmp_path / "cache"
    _python(PROBE, cache, str(good))
    (written,) = (cache / "nbharness").glob("nbformat_schema_*.py")
    written.write_text("def validate(data, *args, **kwargs):\n    return data\n")
    written.chmod(0o666)
    assert _python(PROBE, cache, str(broken)).stdout.split()[0] == "False"
    written.chmod(0o644)  # now it is only ours: it is run, and it accepts anything
    assert _python(PROBE, cache, str(broken)).stdout.split()[0] == "True"


def test_a_damaged_cached_schema_is_removed_and_written_again(tmp_path):
    good = _stored(tmp_path, rich_notebook(), "good.ipynb")
    cache = tmp_path / "cache"
    _python(PROBE, cache, str(good))
    (written,) = (cache / "nbharness").glob("nbformat_schema_*.py")
    written.write_text("def validate(:\n")
    assert _python(PROBE, cache, str(good)).stdout.split()[0] == "True"
    assert not written.exists()
    assert _python(PROBE, cache, str(good)).stdout.split()[0] == "True"
    assert "def validate(data" in written.read_text()
