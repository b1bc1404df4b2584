"""``--nb-html``: the report as a real headless Chromium shows it, loading nothing from the
network, written from real sessions on real kernels under xdist.

Chromium runs with a proxy that records every request and forwards none: a page that asked
for anything from the network would show up there
(``test_the_proxy_sees_a_page_that_loads_from_the_network`` proves it would). Chromium's own
services (its updater, clock and sign-in) call Google's hosts whatever the page, despite
``--disable-background-networking``; those requests are not the page's and are set aside.
Screenshots are kept: in ``$NBH_ARTIFACTS`` when set, else the test's temporary folder, and
the path is printed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socketserver
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from nbharness.cli import main
from nbharness.publish import RunRecord
from nbharness.publish.html import render_report

from .helpers import MakeNotebook, build_notebook

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",  # let the page's load handlers run before the dump
]


#: Hosts Chromium itself calls in every headless run; never the report's requests.
CHROMIUM_SERVICES = ("update.googleapis.com", "clients2.google.com", "accounts.google.com")


def page_requests(proxy: Recorder) -> list[str]:
    """What the proxy was asked for, less Chromium's calls to its own services."""
    return [r for r in proxy.requests if not any(host in r for host in CHROMIUM_SERVICES)]


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A one-colour PNG, made here so the notebook's image output needs no library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


IMAGE = base64.b64encode(png(120, 60, (200, 30, 30))).decode()
FAILING = [
    {"markdown": "# Station report\nThe **failing** notebook."},
    "values = [1, 2, 3]",
    "import base64\n"
    "from IPython.display import Image, display\n"
    "print('printed before the failure')\n"
    f"display(Image(data=base64.b64decode('{IMAGE}')))\n"
    "raise ValueError('the station is offline')",
]


class Recorder(socketserver.ThreadingTCPServer):
    """A proxy that answers nothing and remembers every request line it was sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RecordRequest)
        self.requests: list[str] = []


class RecordRequest(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, Recorder)
        self.server.requests.append(self.rfile.readline().decode(errors="replace").strip())


@pytest.fixture
def proxy() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def browser(tmp_path: Path, proxy: Recorder):
    """``browser(url, *flags)``: Chromium's stdout, every request sent through ``proxy``."""
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("NBH_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium required (NBH_REQUIRE_CHROMIUM=1): not on PATH", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")

    def run(url: str, *flags: str) -> str:
        profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
        command = [
            executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{proxy.server_address[1]}",
            "--proxy-bypass-list=<-loopback>",  # the proxy sees loopback requests too
            *flags,
            url,
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            out, err = process.communicate(timeout=120)
        finally:
            # Chromium's helpers share its process group; stop them all, by its pid.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.returncode == 0, err.decode(errors="replace")[-2000:]
        return out.decode()

    return run


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("NBH_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class References(HTMLParser):
    """Every URL an element of the page refers to (src, href, and similar)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.policy = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("http-equiv") == "Content-Security-Policy":
            self.policy = values.get("content") or ""
        for name in ("src", "href", "srcset", "data", "action", "poster"):
            if values.get(name):
                self.urls.append((tag, name, values[name] or ""))


# Runs in the page once it has loaded: what a reader sees of the failing cell, and what
# the summary table does when filtered and sorted. The result goes into the DOM for --dump-dom.
CHECK = """
<script>
window.addEventListener('load', () => {
  const shown = (el) => {
    if (!el) return false;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== 'hidden';
  };
  const cell = document.querySelector('.celltag_nbharness-failed');
  const image = cell.querySelector('.jp-OutputArea img');
  const titles = () => Array.from(document.querySelectorAll('table.runs tbody tr'))
    .filter((row) => !row.hidden).map((row) => row.cells[0].textContent);
  const result = {
    cell_shown: shown(cell),
    source: cell.querySelector('.jp-InputArea').innerText,
    outputs: cell.querySelector('.jp-Cell-outputWrapper').innerText,
    image_shown: shown(image),
    image_size: [image.naturalWidth, image.naturalHeight],
    linked_from_summary: document.querySelector(`table.runs a[href="#${cell.id}"]`) !== null,
    failure_shown: shown(document.querySelector('pre.report')),
    failure: document.querySelector('pre.report').innerText,
    rows: titles(),
  };
  const byName = document.querySelectorAll('table.runs th')[0];
  byName.click();
  result.sorted = titles();
  byName.click();
  result.reversed = titles();
  const filter = document.getElementById('filter');
  filter.value = 'passes';
  filter.dispatchEvent(new Event('input'));
  result.filtered = titles();
  const out = document.createElement('pre');
  out.id = 'nbharness-check';
  out.textContent = JSON.stringify(result);
  document.body.append(out);
});
</script>
"""


@pytest.fixture
def report(pytester: pytest.Pytester, make_notebook: MakeNotebook) -> Path:
    """A report from a run with a failing and a passing notebook, on two xdist workers."""
    make_notebook("fails.ipynb", FAILING)
    make_notebook("passes.ipynb", ["print('all good')"])
    result = pytester.runpytest_subprocess(
        "--nb", "-n", "2", "--nb-html", "out/report.html", "--nb-output-dir", "executed"
    )
    result.assert_outcomes(failed=1, passed=1)
    path = pytester.path / "out" / "report.html"
    result.stdout.fnmatch_lines([f"nbharness: HTML report written to {path}"])
    return path


@pytest.mark.slow
def test_chromium_shows_the_failing_cell_its_outputs_and_the_error(
    report, browser, proxy, tmp_path
):
    checked = report.with_name("checked.html")
    checked.write_text(report.read_text().replace("</body>", CHECK + "</body>"))
    dom = browser(checked.as_uri(), "--dump-dom")
    start = dom.index('<pre id="nbharness-check">') + len('<pre id="nbharness-check">')
    seen = json.loads(dom[start : dom.index("</pre>", start)].replace("&quot;", '"'))

    assert seen["cell_shown"]
    assert "raise ValueError('the station is offline')" in seen["source"]
    assert "printed before the failure" in seen["outputs"]
    assert "ValueError: the station is offline" in seen["outputs"]
    assert seen["image_shown"]
    assert seen["image_size"] == [120, 60]
    assert seen["linked_from_summary"]
    assert seen["failure_shown"]
    assert seen["failure"].startswith("cell 3 (In [2]) raised ValueError: the station is offline")
    assert seen["rows"] == ["fails.ipynb", "passes.ipynb"]  # failures first
    assert seen["sorted"] == ["fails.ipynb", "passes.ipynb"]  # by name
    assert seen["reversed"] == ["passes.ipynb", "fails.ipynb"]  # a second click reverses
    assert seen["filtered"] == ["passes.ipynb"]

    screenshot = artifacts(tmp_path) / "html-report.png"
    browser(report.as_uri(), f"--screenshot={screenshot}", "--window-size=1200,1800")
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    print(f"screenshot of the HTML report: {screenshot}")
    assert page_requests(proxy) == []


@pytest.mark.slow
def test_the_report_refers_to_nothing_outside_itself_but_the_executed_copies(report):
    page = References()
    page.feed(report.read_text())
    assert "default-src 'none'" in page.policy
    for tag, attribute, url in page.urls:
        if url.startswith(("data:", "#")):
            continue
        assert "://" not in url, (tag, attribute, url)
        assert (report.parent / url).resolve().is_file(), url  # an executed notebook
    links = {url for _, _, url in page.urls if url.endswith(".ipynb")}
    assert links == {"../executed/fails.ipynb", "../executed/passes.ipynb"}


@pytest.mark.slow
def test_the_proxy_sees_a_page_that_loads_from_the_network(browser, proxy, tmp_path):
    page = tmp_path / "remote.html"
    page.write_text('<html><body><img src="http://nbharness.invalid/logo.png"></body></html>')
    browser(page.as_uri(), "--dump-dom")
    assert page_requests(proxy) == ["GET http://nbharness.invalid/logo.png HTTP/1.1"]


def test_output_regressions_show_as_diffs_and_passing_notebooks_render_with_html_all(
    pytester, make_notebook
):
    stored = {"output_type": "stream", "name": "stdout", "text": "total 1\n"}
    make_notebook("drift.ipynb", [{"source": "print('total', 2)", "count": 1, "outputs": [stored]}])
    make_notebook("steady.ipynb", [{"markdown": "Nothing to see"}, "x = 1"])
    pytester.makeini("[pytest]\nnb_html = reports/nb.html\nnb_html_all = true\n")
    pytester.runpytest("--nb", "--nb-compare").assert_outcomes(failed=1, passed=1)
    page = (pytester.path / "reports" / "nb.html").read_text()
    assert "<h3>Output differences in cell 1 (In [1])</h3>" in page
    assert '<span class="del">-total 1</span>' in page
    assert '<span class="add">+total 2</span>' in page
    assert "<h2>steady.ipynb: passed</h2>" in page
    assert "Nothing to see" in page


def test_without_html_all_a_passing_notebook_is_listed_not_rendered(pytester, make_notebook):
    make_notebook("steady.ipynb", [{"markdown": "Nothing to see"}, "x = 1"])
    pytester.runpytest("--nb", "--nb-html", "nb.html").assert_outcomes(passed=1)
    page = (pytester.path / "nb.html").read_text()
    assert "<td>steady.ipynb</td><td>passed</td>" in page
    assert "Nothing to see" not in page


def test_a_report_the_disk_refuses_is_one_line_and_the_verdict_stands(pytester, make_notebook):
    make_notebook("steady.ipynb", ["x = 1"])
    (pytester.path / "taken").write_text("a file, not a folder")
    result = pytester.runpytest("--nb", "--nb-html", "taken/nb.html")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["nbharness: HTML report taken/nb.html: not written: File exists"])
    assert "Traceback" not in result.stdout.str()


def test_the_failing_line_in_the_paired_script_is_named(pytester, make_notebook):
    pytester.makepyprojecttoml('[tool.nbharness]\npairing = "py:percent"\n')
    make_notebook("ratio.ipynb", ["x = 0", "1 / x"])
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pytester.path)
        assert main(["sync", "ratio.ipynb"]) == 0
    pytester.runpytest("--nb", "--nb-html", "nb.html").assert_outcomes(failed=1)
    lines = (pytester.path / "ratio.py").read_text().splitlines()
    page = (pytester.path / "nb.html").read_text()
    assert f"paired script <code>ratio.py:{lines.index('1 / x') + 1}</code>" in page


def test_a_changed_image_is_shown_stored_beside_fresh(pytester, make_notebook):
    pytester.makepyprojecttoml('[tool.nbharness.compare]\nimages = "hash"\n')
    old, new = base64.b64encode(png(4, 4, (0, 0, 255))).decode(), IMAGE
    plot = {"output_type": "display_data", "data": {"image/png": old}, "metadata": {}}
    source = (
        "import base64\nfrom IPython.display import Image, display\n"
        f"display(Image(data=base64.b64decode('{new}')))"
    )
    make_notebook("plot.ipynb", [{"source": source, "count": 1, "outputs": [plot]}])
    pytester.runpytest("--nb", "--nb-compare", "--nb-html", "nb.html").assert_outcomes(failed=1)
    page = (pytester.path / "nb.html").read_text()
    stored = page.index("<h3>Images in cell 1</h3>")
    assert page.index(f'<img src="data:image/png;base64,{old}" alt="stored image">') > stored
    assert page.index(f'<img src="data:image/png;base64,{new}" alt="fresh image">') > stored


@pytest.mark.slow
def test_without_nbconvert_the_flag_says_what_to_install(pytester, make_notebook):
    make_notebook("steady.ipynb", ["x = 1"])
    # As if nbconvert were not installed: an entry of None makes Python's import refuse it.
    pytester.makeconftest("import sys\nsys.modules['nbconvert'] = None\n")
    result = pytester.runpytest_subprocess("--nb", "--nb-html", "nb.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines == [
        "ERROR: --nb-html needs nbconvert: pip install 'nbharness[html]'",
        "",
    ]


def test_a_notebook_as_stored_on_disk_renders(tmp_path):
    stored = nbformat.writes(build_notebook(["first = 1\nsecond = 2"]))  # sources as line lists
    assert '"first = 1\\n",' in stored
    record = RunRecord("a.ipynb::a", "a.ipynb", "a.ipynb", "passed", executed=stored)
    page = render_report([record], tmp_path, tmp_path)
    assert '<span class="n">second</span>' in page
