"""Helpers the test modules share: notebooks built in code, output matching, process checks."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

Cell = str | dict[str, Any]
MakeNotebook = Callable[..., Path]


def expect(output: pytest.LineMatcher, patterns: list[str]) -> None:
    """``fnmatch_lines`` with ``[`` taken literally: our reports say "In [2]" a lot."""
    output.fnmatch_lines([pattern.replace("[", "[[]") for pattern in patterns])


def build_notebook(cells: list[Cell], **metadata: Any) -> nbformat.NotebookNode:
    """A v4 notebook with pinned cell ids.

    A cell is its source, or a dict: ``markdown``, or ``source`` with optional ``tags``,
    ``metadata``, stored ``outputs`` and their ``count``.
    """
    built = []
    for number, cell in enumerate(cells, start=1):
        if isinstance(cell, str):
            cell = {"source": cell}
        if "markdown" in cell:
            node = new_markdown_cell(cell["markdown"], id=f"cell-{number}")
        else:
            node = new_code_cell(cell["source"], id=f"cell-{number}")
            node.metadata.update(cell.get("metadata", {}))
            if cell.get("tags"):
                node.metadata["tags"] = list(cell["tags"])
            node.outputs = [nbformat.from_dict(out) for out in cell.get("outputs", [])]
            node.execution_count = cell.get("count")
        built.append(node)
    nb = new_notebook(cells=built)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata.update(metadata)
    return nb


def kernels_exit_at_start(ipython_dir: Path) -> None:
    """An IPython profile in ``ipython_dir`` whose kernels print why and exit as they start
    (the fork server's module probe, which has no ``JPY_PARENT_PID``, still runs)."""
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "import os, sys\n"
        "if 'JPY_PARENT_PID' in os.environ:\n"
        "    print('no licence server at lic.example:27000', file=sys.stderr, flush=True)\n"
        "    os._exit(3)\n"
    )


#: Another process choosing free ports and listening on them, as servers and kernels do:
#: it is given any port that jupyter_client chose and a kernel has not bound yet.
PORT_TAKER = """
import collections, resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = collections.deque()
sys.stdout.write("taking\\n"); sys.stdout.flush()
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1); held.append(s)
    if len(held) > min(6000, hard - 100):
        held.popleft().close()
"""


@contextlib.contextmanager
def ports_taken() -> Iterator[None]:
    """While the block runs, another process keeps taking the free ports port 0 gives."""
    taker = subprocess.Popen([sys.executable, "-c", PORT_TAKER], stdout=subprocess.PIPE)
    try:
        assert taker.stdout is not None
        assert taker.stdout.readline() == b"taking\n"
        yield
    finally:
        taker.kill()
        taker.communicate()


def record_pids_cell(pid_file: str = "pids.txt") -> str:
    """A cell that starts a long-lived child and records its own and the child's pid."""
    return (
        "import os, subprocess\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        f"open({pid_file!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')"
    )


def signalled_session(cwd: Path, ready: Path, signum: signal.Signals) -> tuple[int, bytes]:
    """Run ``pytest --nb`` in ``cwd``, send it ``signum`` once a cell has written ``ready``,
    and return its exit code and output."""
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--nb", "-p", "no:cacheprovider"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the cell after the one that wrote ``ready`` is running
    session.send_signal(signum)
    output, _ = session.communicate(timeout=30)
    return session.returncode, output


def assert_all_dead(pids: list[int], grace: float = 3.0) -> None:
    """Every pid has exited (zombies count as exited), allowing ``grace`` seconds."""
    deadline = time.monotonic() + grace
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _running(pid)]
        time.sleep(0.05)
    assert not alive, f"processes left running: {alive}"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
