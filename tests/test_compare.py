"""Output regression against a fresh run, and snapshot updates."""

from __future__ import annotations

import hashlib
import json

import nbformat
import pytest

from nbharness.verify.compare import CompareSettings, compare_outputs, output_text

from .helpers import expect

pytestmark = pytest.mark.filterwarnings("default::nbharness.errors.NotebookWarning")


def stdout(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def result(text, count, **extra):
    data = {"text/plain": text, **extra}
    return {"output_type": "execute_result", "execution_count": count, "data": data, "metadata": {}}


def test_streams_are_joined_and_labelled_and_noise_is_sanitized():
    outputs = [
        stdout("made <Thing at 0x7f3a2b1c9d00>\n"),
        stdout("at 2026-11-25 12:00:01.123\n"),
        {"output_type": "stream", "name": "stderr", "text": "Wall time: 1.2 s\n"},
        result("42", 1, **{"image/png": "iVBORw0KGgo="}),
        {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["..."]},
    ]
    assert output_text(outputs, CompareSettings(images="hash")).splitlines() == [
        "[stdout]",
        "made <Thing at 0xADDRESS>",
        "at DATETIME",
        "[stderr]",
        "Wall time: TIME",
        "[image/png]",
        "sha256:" + hashlib.sha256(b"iVBORw0KGgo=").hexdigest()[:16],
        "[text/plain]",
        "42",
        "[error]",
        "ValueError: bad",
    ]
    no_images = output_text(outputs, CompareSettings())  # as nbval: images skipped by default
    assert "image/png" not in no_images


def test_a_difference_is_a_unified_diff_per_cell():
    stored = [
        {"cell_type": "code", "source": "x", "outputs": [stdout("1\n2\n")], "execution_count": 1}
    ]
    fresh = [
        {"cell_type": "code", "source": "x", "outputs": [stdout("1\n3\n")], "execution_count": 1}
    ]
    mismatch = compare_outputs(stored, fresh, CompareSettings())
    assert mismatch is not None
    assert mismatch.summary == "outputs differ from the stored ones in cell 1 (In [1])"
    assert mismatch.diffs[0][1][2:] == ["@@ -1,3 +1,3 @@", " [stdout]", " 1", "-2", "+3"]


SOURCE = "import random\nprint('answer', 6 * 7)"


def test_matching_outputs_pass_and_a_real_difference_fails_with_a_diff(pytester, make_notebook):
    make_notebook(
        "same.ipynb", [{"source": SOURCE, "outputs": [stdout("answer 42\n")], "count": 1}]
    )
    make_notebook(
        "drifted.ipynb",
        [
            {"markdown": "# Drift"},
            {"source": "print('answer', 6 * 9)", "outputs": [stdout("answer 42\n")], "count": 1},
        ],
    )
    result_ = pytester.runpytest("--nb", "--nb-compare")
    result_.assert_outcomes(passed=1, failed=1)
    expect(
        result_.stdout,
        [
            "outputs differ from the stored ones in cell 2 (In [1])",
            "",
            "(--- stored, +++ fresh; --nb-update-outputs stores the fresh ones)",
            "",
            "Cell 2 (In [1]):",
            "--- stored",
            "+++ fresh",
            "@@ *",
            " [stdout]",
            "-answer 42",
            "+answer 54",
        ],
    )


def test_ignore_tags_and_nbval_comments_take_cells_out_of_the_comparison(pytester, make_notebook):
    wrong = [stdout("stale\n")]
    make_notebook(
        "noisy.ipynb",
        [
            {
                "source": "print('a')",
                "outputs": wrong,
                "count": 1,
                "tags": ["nbharness-ignore-output"],
            },
            {"source": "print('b')", "outputs": wrong, "count": 2, "tags": ["nbval-ignore-output"]},
            {"source": "# NBVAL_IGNORE_OUTPUT\nprint('c')", "outputs": wrong, "count": 3},
        ],
    )
    pytester.runpytest("--nb", "--nb-compare").assert_outcomes(passed=1)


def test_cells_stored_without_outputs_are_compared_only_when_strict(pytester, make_notebook):
    make_notebook("bare.ipynb", ["print('new output')"])
    pytester.runpytest("--nb", "--nb-compare").assert_outcomes(passed=1)
    strict = pytester.runpytest("--nb", "--nb-compare=strict")
    strict.assert_outcomes(failed=1)
    expect(strict.stdout, ["outputs differ from the stored ones in cell 1"])


def test_project_sanitizers_and_image_policy_come_from_pyproject(pytester, make_notebook):
    make_notebook(
        "timed.ipynb",
        [
            {
                "source": "import time\nprint('took', time.time())",
                "outputs": [stdout("took 12.5\n")],
                "count": 1,
            }
        ],
    )
    pytester.makepyprojecttoml(
        r"""
        [tool.nbharness.compare]
        sanitize = [["took [0-9.]+", "took SECONDS"]]
        images = "skip"
        """
    )
    pytester.runpytest("--nb", "--nb-compare").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('sanitize = [["(", "x"]]', "bad sanitizer pattern '('"),
        ('images = "pixels"', "images must be 'hash' or 'skip'"),
        ("colour = true", "[[]tool.nbharness.compare] colour is not a known key; known keys: *"),
    ],
)
def test_bad_compare_settings_are_usage_errors_naming_the_file(pytester, toml, message):
    pytester.makepyprojecttoml(f"[tool.nbharness.compare]\n{toml}\n")
    result_ = pytester.runpytest("--nb", "--nb-compare")
    assert result_.ret == pytest.ExitCode.USAGE_ERROR
    result_.stderr.fnmatch_lines([f"*pyproject.toml*{message}*"])


def test_update_outputs_stores_fresh_outputs_and_nothing_else(pytester, make_notebook):
    path = make_notebook(
        "snap.ipynb",
        [{"source": "print(40 + 2)", "outputs": [stdout("old\n")], "count": 7}],
        authors=[{"name": "Ada"}],
    )
    raw = json.loads(path.read_text())
    raw["metadata"]["orig_nbformat"] = 3  # nbformat would drop it on a rewrite
    path.write_text(json.dumps(raw))
    before = json.loads(path.read_text())
    result_ = pytester.runpytest("--nb", "--nb-compare", "--nb-update-outputs")
    result_.assert_outcomes(passed=1)
    expect(result_.stdout, ["*nbharness: outputs updated*", "snap.ipynb"])
    after = json.loads(path.read_text())
    assert after["cells"][0]["outputs"] == [stdout(["42\n"])]
    assert after["cells"][0]["execution_count"] == 1
    assert after["metadata"].pop("nbharness")["fresh"]["cells"]  # the freshness record
    assert after["metadata"] == before["metadata"]
    assert after["cells"][0]["metadata"] == before["cells"][0]["metadata"]
    pytester.runpytest("--nb", "--nb-compare").assert_outcomes(passed=1)
    again = pytester.runpytest("--nb", "--nb-update-outputs")
    assert "outputs updated" not in again.stdout.str()


def test_update_keeps_outputs_that_only_differ_in_noise(pytester, make_notebook):
    noisy = "print(object())"
    path = make_notebook(
        "noise.ipynb",
        [{"source": noisy, "outputs": [stdout("<object object at 0x7f0000000001>\n")], "count": 1}],
    )
    before = path.read_text()
    result_ = pytester.runpytest("--nb", "--nb-update-outputs")
    result_.assert_outcomes(passed=1)
    assert without_record(path.read_text()) == json.loads(before)


def test_update_outputs_leaves_failing_notebooks_alone(pytester, make_notebook):
    path = make_notebook(
        "broken.ipynb", [{"source": "1/0", "outputs": [stdout("old\n")], "count": 1}]
    )
    before = path.read_bytes()
    pytester.runpytest("--nb", "--nb-update-outputs").assert_outcomes(failed=1)
    assert path.read_bytes() == before
    assert nbformat.read(path, as_version=4).cells[0].outputs[0]["text"] == "old\n"


def test_streams_compare_as_shown_whatever_their_interleaving():
    stored = [
        stdout("progress 0\r"),
        stdout("progress 2\n"),
        {"output_type": "stream", "name": "stderr", "text": "warn\n"},
    ]
    fresh = [
        {"output_type": "stream", "name": "stderr", "text": "\x1b[31mwarn\x1b[0m\n"},
        stdout("progress 0\rprogress 1\rprogress 2\n"),
    ]
    assert output_text(stored, CompareSettings()) == output_text(fresh, CompareSettings())


def test_long_diffs_are_cut_to_a_readable_size():
    old = [
        {"cell_type": "code", "source": "x", "execution_count": 6, "outputs": [stdout("a\n" * 500)]}
    ]
    new = [
        {"cell_type": "code", "source": "x", "execution_count": 1, "outputs": [stdout("b\n" * 500)]}
    ]
    mismatch = compare_outputs(old, new, CompareSettings())
    assert mismatch is not None
    name, diff = mismatch.diffs[0]
    assert name == "cell 1 (In [6])"
    assert len(diff) == 61
    assert diff[-1].startswith("… ")


def test_compare_does_not_swallow_the_path_after_it(pytester, make_notebook):
    make_notebook("one.ipynb", [{"source": "print(1)", "outputs": [stdout("1\n")], "count": 1}])
    make_notebook("other.ipynb", ["1/0"])
    pytester.runpytest("--nb", "--nb-compare", "one.ipynb").assert_outcomes(passed=1)
    pytester.runpytest("--nb", "--nb-compare=strict", "one.ipynb").assert_outcomes(passed=1)


def test_a_cell_that_ran_and_stored_no_output_must_still_print_nothing(pytester, make_notebook):
    make_notebook("quiet.ipynb", [{"source": "print('now I talk')", "outputs": [], "count": 1}])
    make_notebook("unrun.ipynb", [{"source": "print('never ran before')", "outputs": []}])
    result_ = pytester.runpytest("--nb", "--nb-compare")
    result_.assert_outcomes(passed=1, failed=1)
    expect(result_.stdout, ["FAILED quiet.ipynb::quiet - outputs differ*"])


def test_check_output_markers_compare_without_the_flag_and_the_last_marker_wins(
    pytester, make_notebook
):
    """nbval's rule: comments override tags, and the last marker of each kind wins."""
    wrong = [stdout("stale\n")]
    make_notebook(
        "marked.ipynb",
        [{"source": "# NBVAL_CHECK_OUTPUT\nprint('new')", "outputs": wrong, "count": 1}],
    )
    make_notebook("plain.ipynb", [{"source": "print('new')", "outputs": wrong, "count": 1}])
    both = {"source": "print('new')", "outputs": wrong, "count": 1}
    both["tags"] = ["nbval-ignore-output", "nbval-check-output"]
    make_notebook("both.ipynb", [both])
    overridden = {
        "source": "# NBVAL_CHECK_OUTPUT\n# NBVAL_IGNORE_OUTPUT\nprint('new')",
        "outputs": wrong,
        "count": 1,
        "tags": ["nbval-check-output"],
    }
    make_notebook("overridden.ipynb", [overridden])
    result_ = pytester.runpytest("--nb")
    result_.assert_outcomes(passed=2, failed=2)
    expect(
        result_.stdout,
        [
            "FAILED both.ipynb::both - outputs differ*",
            "FAILED marked.ipynb::marked - outputs differ*",
        ],
    )


def test_check_output_cells_and_updates_use_the_projects_sanitizers_and_image_policy(
    pytester, make_notebook
):
    """One CompareSettings per project: nbval's marked cells without --nb-compare and
    --nb-update-outputs compare as --nb-compare does, images skipped unless asked for."""
    plot = "{'image/png': 'iVBORw0KGgo=', 'text/plain': 'plot'}"
    stored = [
        stdout("took 12.5\n"),
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"image/png": "AAAA", "text/plain": "plot"},
        },
    ]
    make_notebook(
        "timed.ipynb",
        [
            {
                "source": f"# NBVAL_CHECK_OUTPUT\nimport time\nprint('took', time.time())\n"
                f"display({plot}, raw=True)",
                "outputs": stored,
                "count": 1,
            }
        ],
    )
    pytester.makepyprojecttoml(
        '[tool.nbharness.compare]\nsanitize = [["took [0-9.]+", "took SECONDS"]]\n'
    )
    before = (pytester.path / "timed.ipynb").read_text()
    pytester.runpytest("--nb").assert_outcomes(passed=1)
    pytester.runpytest("--nb", "--nb-update-outputs").assert_outcomes(passed=1)
    assert without_record((pytester.path / "timed.ipynb").read_text()) == json.loads(before)


def without_record(text):
    """A notebook as JSON without the freshness record --nb-update-outputs adds."""
    raw = json.loads(text)
    del raw["metadata"]["nbharness"]["fresh"]
    if not raw["metadata"]["nbharness"]:
        del raw["metadata"]["nbharness"]
    return raw


def test_pytest_notebooks_diff_ignore_paths_are_honoured(pytester, make_notebook):
    latex = {
        "output_type": "execute_result",
        "execution_count": 1,
        "metadata": {},
        "data": {"text/plain": "'x'", "text/latex": "$stale$"},
    }
    code = (
        "class X:\n"
        "    def _repr_latex_(self):\n"
        "        return '$new$'\n"
        "    def __repr__(self):\n"
        "        return \"'x'\"\n"
        "X()"
    )
    cell = {"source": code, "outputs": [latex], "count": 1}
    cell["metadata"] = {"nbreg": {"diff_ignore": ["/outputs/*/data/text/latex"]}}
    make_notebook("cell_level.ipynb", [cell])
    make_notebook(
        "notebook_level.ipynb",
        [{"source": code, "outputs": [latex], "count": 1}],
        nbreg={"diff_ignore": ["/cells/0/outputs/0/data/text/latex"]},
    )
    make_notebook("not_ignored.ipynb", [{"source": code, "outputs": [latex], "count": 1}])
    result_ = pytester.runpytest("--nb", "--nb-compare")
    result_.assert_outcomes(passed=2, failed=1)
    expect(result_.stdout, ["FAILED not_ignored.ipynb::not_ignored - outputs differ*"])


def test_pytest_notebooks_diff_replace_rules_are_honoured(pytester, make_notebook):
    """``[path, regex, replacement]`` rules apply to stored and fresh outputs alike."""
    stored = {"output_type": "stream", "name": "stdout", "text": "run 111 at 10:15\n"}
    result = {
        "output_type": "execute_result",
        "execution_count": 2,
        "metadata": {},
        "data": {"text/plain": "'id-0042'"},
    }
    cells = [
        {"source": "import random\nprint(f'run {random.randint(200, 999)} at 11:30')", "count": 1},
        {"source": "f'id-{random.randint(1000, 9999)}'", "count": 2},
    ]
    cells[0]["outputs"], cells[1]["outputs"] = [stored], [result]
    cell_level = [dict(cells[0]), dict(cells[1])]
    cell_level[0]["metadata"] = {
        "nbreg": {"diff_replace": [["/outputs/*/text", r"\d+ at \d\d:\d\d", "N at HH:MM"]]}
    }
    make_notebook(
        "replaced.ipynb",
        cell_level,
        nbreg={"diff_replace": [["/cells/1/outputs/*/data/text/plain", r"id-\d+", "id-N"]]},
    )
    make_notebook("not_replaced.ipynb", cells)
    outcome = pytester.runpytest("--nb", "--nb-compare")
    outcome.assert_outcomes(passed=1, failed=1)
    expect(outcome.stdout, ["FAILED not_replaced.ipynb::not_replaced - outputs differ*"])


def test_the_header_says_how_outputs_are_compared(pytester, make_notebook):
    """Switching from nbval: say up front that images are skipped and what is sanitized."""
    make_notebook("a.ipynb", ["x = 1"])
    result_ = pytester.runpytest("--nb", "--nb-compare")
    result_.stdout.fnmatch_lines(["nbharness: *compare outputs (images skipped, 4 sanitizers)*"])
