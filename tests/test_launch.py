"""Kernel launchers: a forked kernel is as fresh as a new process, and nothing outlives us."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import psutil
import pytest

from nbharness.execute.forkserver.client import ForkServerError

from .helpers import assert_all_dead, ports_taken, record_pids_cell

LAUNCHERS = pytest.mark.parametrize("launcher", ["fork", "process"])

# Notebook A leaves every kind of trace a notebook can, in modules a fork server preloads
# too (numpy, pandas, matplotlib); notebook B looks for them.
SIDE_EFFECTS = """
import os, sys, random, string, threading, warnings, builtins, atexit
GLOBAL_A = 1
os.environ["NBH_LEAK"] = "1"
sys.path.append("/nbh-leak")
warnings.simplefilter("error", UserWarning)
string.ascii_letters = "patched"
builtins.nbh_leak = True
random.seed(1234)
LEAKED_DRAW = random.random()
open("a.txt", "w")
threading.Thread(target=lambda: __import__("time").sleep(60), daemon=True).start()
open("a_draw.txt", "w").write(repr(LEAKED_DRAW))
import numpy as np, pandas as pd, matplotlib.pyplot as plt
np.random.seed(1234)
open("a_np_draw.txt", "w").write(repr(np.random.random()))
pd.set_option("display.max_rows", 3)
plt.rcParams["lines.linewidth"] = 9
plt.switch_backend("svg")
os.chdir("/")
import json.tool
"""
CHECKS = """
import os, sys, random, string, threading, warnings, builtins
assert "GLOBAL_A" not in globals()
assert "NBH_LEAK" not in os.environ
assert "/nbh-leak" not in sys.path
assert not any(f[0] == "error" and f[2] is UserWarning for f in warnings.filters)
assert string.ascii_letters != "patched"
assert not hasattr(builtins, "nbh_leak")
assert "json.tool" not in sys.modules
assert threading.active_count() == BASE_THREADS, threading.enumerate()
assert os.getcwd() == HERE, os.getcwd()
assert repr(random.random()) != open("a_draw.txt").read()
import numpy as np, pandas as pd, matplotlib.pyplot as plt
assert repr(np.random.random()) != open("a_np_draw.txt").read()
assert pd.get_option("display.max_rows") == 60
assert plt.rcParams["lines.linewidth"] == 1.5
assert plt.get_backend() == "module://matplotlib_inline.backend_inline", plt.get_backend()
"""


@LAUNCHERS
def test_nothing_one_notebook_does_is_visible_to_the_next(pytester, make_notebook, launcher):
    here = str(pytester.path)
    make_notebook("a_leaves_traces.ipynb", [SIDE_EFFECTS])
    make_notebook(
        "b_sees_none.ipynb",
        ["import threading\nBASE_THREADS = threading.active_count()", f"HERE = {here!r}\n{CHECKS}"],
    )
    result = pytester.runpytest("--nb", "--nb-launcher", launcher, "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_a_forked_kernel_looks_like_a_fresh_process(pytester, make_notebook):
    probe = (
        "import sys, os, json\n"
        "json.dump({'modules': sorted(sys.modules), 'path': sys.path, 'cwd': os.getcwd(),"
        " 'argv0': os.path.basename(sys.argv[0])},"
        " open(f'{os.environ.get(\"NBH_OUT\", \"probe\")}.json', 'w'))"
    )
    make_notebook("probe.ipynb", [probe])
    for launcher in ("fork", "process"):
        env = {"NBH_OUT": launcher}
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            pytester.runpytest("--nb", "--nb-launcher", launcher).assert_outcomes(passed=1)

    fork = json.loads((pytester.path / "fork.json").read_text())
    fresh = json.loads((pytester.path / "process.json").read_text())
    assert set(fork["modules"]) - set(fresh["modules"]) == set()
    assert set(fresh["modules"]) - set(fork["modules"]) == set()
    assert fork["path"] == fresh["path"]
    assert fork["cwd"] == fresh["cwd"]
    assert fork["argv0"] == fresh["argv0"]


@LAUNCHERS
def test_an_ipykernel_listens_on_unix_sockets_in_a_private_folder_gone_after_the_run(
    pytester, make_notebook, launcher
):
    """No TCP port is chosen before the kernel binds it: nothing else on the machine can
    take one in between and kill the kernel at start ("Address already in use")."""
    probe = (
        "import json, os, stat, ipykernel.connect as c\n"
        "info = json.load(open(c.get_connection_file()))\n"
        "folder = os.path.dirname(info['ip'])\n"
        "channels = [f\"{info['ip']}-{info[k]}\" for k in info if k.endswith('_port')]\n"
        "json.dump({'transport': info['transport'], 'folder': folder,"
        " 'mode': os.stat(folder).st_mode & 0o777,"
        " 'sockets': [stat.S_ISSOCK(os.stat(f).st_mode) for f in channels]},"
        " open('socket.json', 'w'))"
    )
    make_notebook("probe.ipynb", [probe])
    pytester.runpytest("--nb", "--nb-launcher", launcher).assert_outcomes(passed=1)
    seen = json.loads((pytester.path / "socket.json").read_text())
    assert (seen["transport"], seen["mode"], seen["sockets"]) == ("ipc", 0o700, [True] * 5)
    assert not os.path.exists(seen["folder"])


@LAUNCHERS
def test_a_kernel_starts_while_other_processes_take_free_ports(pytester, make_notebook, launcher):
    """On TCP ports from the ephemeral range (before 855b562) every run failed here: the
    kernel died at start with "Address already in use". Each run is a new process, so
    each starts a fork server."""
    make_notebook("ok.ipynb", ["print('fine')"])
    with ports_taken():
        for _ in range(3):
            result = pytester.runpytest_subprocess(
                "--nb", "--nb-launcher", launcher, "-p", "no:cacheprovider"
            )
            result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_a_killed_pytest_takes_the_fork_server_and_its_kernels_with_it(pytester, make_notebook):
    make_notebook("hangs.ipynb", [record_pids_cell(), "import time\ntime.sleep(300)"])
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--nb", "--nb-launcher", "fork", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pids_file = pytester.path / "pids.txt"
    deadline = time.monotonic() + 30
    while not pids_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    fork_servers = [
        p.pid
        for p in psutil.Process(session.pid).children()
        if "forkserver/server.py" in " ".join(p.cmdline())
    ]
    assert len(fork_servers) == 1
    session.send_signal(signal.SIGKILL)
    session.wait()
    assert_all_dead([*fork_servers, *(int(pid) for pid in pids_file.read_text().split())], grace=5)


def test_an_unknown_launcher_is_a_usage_error(pytester):
    result = pytester.runpytest("--nb", "--nb-launcher", "teleport")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--nb-launcher: expected one of fork, process, got 'teleport'*"])


def test_a_fork_server_error_survives_pickling():
    """xdist sends errors between processes: the fields come back, not only the text."""
    error = ForkServerError("its start", "exited with code 1")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.waited_for, copy.state, str(copy)) == (error.waited_for, error.state, str(error))
