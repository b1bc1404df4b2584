"""Remote runs when things go wrong, on a real JupyterHub: a kernel that dies, a cell that
hangs, a websocket that drops, a server stopped under a run, a spawn that fails or is too
slow, pytest itself interrupted, and a hub that is away or refuses the token.

Each fault must end in one clear line, quickly, without the token in it, and with no
kernel left behind on alice's servers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from nbformat import NotebookNode

from nbharness.errors import CellTimeout, KernelDied
from nbharness.execute import Run, RunResult
from nbharness.execute.remote import RemoteExecutor
from nbharness.execute.websocket import KernelSocket
from nbharness.jupyter_api.hub import Hub as HubClient
from nbharness.jupyter_api.hub import HubError
from nbharness.jupyter_api.rest import Server

from .helpers import Cell, build_notebook
from .hubfixture import USER_SCOPES, Hub, HubUser, free_ports, http

pytestmark = pytest.mark.hub

USER = "alice"
#: A usage error: what pytest exits with when nbharness cannot set up its servers.
USAGE_ERROR = 4


# -- helpers ---------------------------------------------------------------------------------


def home(hub: Hub) -> Path:
    """alice's home: her servers' root, so the remote kernels' working directory."""
    return hub.root / "home" / USER


def marker_name() -> str:
    """A file name of this test's own in alice's home (xdist workers have hubs of their own,
    but a rerun must never see an earlier marker)."""
    return f"marker-{uuid.uuid4().hex[:12]}"


def marking(marker: str) -> str:
    """Code that writes the kernel's pid into ``marker`` (in its cwd): "the cell runs now"."""
    return f"import os\nwith open({marker!r}, 'w') as f:\n    f.write(str(os.getpid()))\n"


def wait_for(path: Path, timeout: float, gave_up: Callable[[], bool] = lambda: False) -> str:
    """The text of ``path`` once it exists and is written; fails after ``timeout`` s, or
    as soon as ``gave_up()`` says it never will be (the run it waits for ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not gave_up():
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path.name} not written")


def assert_dead(pid: int, grace: float = 10.0) -> None:
    """Process ``pid`` (a remote kernel, under the hub's tree) has exited."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    raise AssertionError(f"kernel process {pid} still runs")


def make_run(tmp_path: Path, cells: list[Cell], cell_timeout: float = 60.0) -> Run:
    path = tmp_path / "fault.ipynb"
    notebook = build_notebook(cells)
    nbformat.write(notebook, path)
    return Run(path=path, notebook=notebook, cwd=tmp_path, cell_timeout=cell_timeout)


def stream_text(cell: NotebookNode) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


def on_hub(hub: Hub, *args: str) -> list[str]:
    """``pytest --nb`` on alice's servers of ``hub``."""
    return ["--nb", "--nb-hub-url", hub.url, "--nb-hub-user", USER, "-p", "no:cacheprovider", *args]


def refusal(result: pytest.RunResult, secret: str) -> str:
    """The one line a refused run ends with; checks that it is a usage error, alone, short,
    with no traceback and no token anywhere in the output."""
    output = "\n".join([*result.outlines, *result.errlines])
    assert result.ret == USAGE_ERROR, output
    assert secret not in output
    assert "Traceback" not in output
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, output
    assert errors[0].startswith("ERROR: nbharness: "), output
    return errors[0]


def delete_kernels(user: HubUser) -> None:
    """Delete whatever kernels a failed test left on the user's default server."""
    for kernel in user.hub.kernels(user.name):
        status, _ = http("DELETE", f"{user.server_url}api/kernels/{kernel['id']}", token=user.token)
        assert status in (204, 404), status


@pytest.fixture
def alice(hub_user: HubUser) -> Iterator[Server]:
    """alice's default server, as the executor sees it; no kernel of ours may outlive a test."""
    yield Server(hub_user.server_url, hub_user.token, label=f"{USER}/")
    assert hub_user.hub.kernels(USER) == []


@pytest.fixture
def alice_env(hub_user: HubUser, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubUser]:
    """alice's token where ``pytest --nb`` looks for it; no kernel may outlive the test."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub_user.token)
    yield hub_user
    assert hub_user.hub.kernels(USER) == []


@pytest.fixture
def trivial(pytester: pytest.Pytester) -> Path:
    """A notebook that passes anywhere: the runs that use it must fail before it runs."""
    path = pytester.path / "trivial.ipynb"
    nbformat.write(build_notebook(["1 + 1"]), path)
    return path


# -- faults under the executor ---------------------------------------------------------------


def test_a_kernel_that_dies_mid_cell_is_reported_in_seconds(
    jupyterhub: Hub, alice: Server, tmp_path: Path
) -> None:
    """The server restarts a dead kernel quietly: only iopub says so. Waiting for the cell
    timeout instead would hold a CI job for as long as the limit."""
    run = make_run(tmp_path, ["x = 1", "import os\nos._exit(1)", "print('never')"])
    started = time.monotonic()
    with RemoteExecutor(alice) as executor:
        result = executor.execute(run)
    elapsed = time.monotonic() - started

    error = result.error
    assert isinstance(error, KernelDied), error
    assert error.index == 1
    assert error.how, "the report should say how it died"
    assert "kernel died" in error.summary
    assert "\n" not in error.summary
    assert elapsed < 20, f"took {elapsed:.1f} s: seen at the cell timeout, not at the death"
    assert jupyterhub.kernels(USER) == []


def test_a_cell_past_its_timeout_is_interrupted_and_its_kernel_deleted(
    jupyterhub: Hub, alice: Server, tmp_path: Path
) -> None:
    """A busy kernel on a shared server must stop computing, then go."""
    marker = marker_name()
    interrupted = home(jupyterhub) / marker
    cell = (
        "import time\n"
        "try:\n"
        "    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        f"    open({marker!r}, 'w').write('interrupted')\n"
        "    raise\n"
    )
    run = make_run(tmp_path, [cell], cell_timeout=2)
    started = time.monotonic()
    with RemoteExecutor(alice) as executor:
        result = executor.execute(run)
    elapsed = time.monotonic() - started

    error = result.error
    assert isinstance(error, CellTimeout), error
    assert error.timeout == 2
    assert "the cell timeout of 2 s" in error.summary
    assert "\n" not in error.summary
    assert elapsed < 20
    assert wait_for(interrupted, timeout=5) == "interrupted"
    interrupted.unlink()
    assert jupyterhub.kernels(USER) == []


class DropSocket:
    """Closes the kernel's websocket from our side while the first cell runs.

    The websocket lives on the executing thread's event loop, so it is closed from there.
    """

    def __init__(self, executor: RemoteExecutor, after: float) -> None:
        self.executor = executor
        self.after = after
        self.socket: KernelSocket | None = None
        self.dropped: object = None
        self.finished_on: object = None

    def cell_started(self, index: int, cell: NotebookNode) -> None:
        if index != 0:
            return
        (km,) = self.executor.kernels
        self.socket = km.socket
        asyncio.get_running_loop().call_later(self.after, self._drop)

    def _drop(self) -> None:
        """Cut the TCP connection under the websocket, as a network failure would (a
        polite websocket close is another path: tornado may never end the read)."""
        assert self.socket is not None
        assert self.socket._ws is not None
        self.dropped = self.socket._ws
        self.socket._ws.stream.close()

    def cell_finished(self, index: int, cell: NotebookNode) -> None:
        if index == 0 and self.socket is not None:
            self.finished_on = self.socket._ws


def test_a_dropped_websocket_is_reopened_and_the_output_kept(
    jupyterhub: Hub, alice: Server, tmp_path: Path
) -> None:
    """Proxies and load balancers drop idle websockets: the run must not notice. The client
    reconnects with the same session id, so the server replays what it buffered."""
    cells: list[Cell] = [
        "import time\ntime.sleep(1.5)\nprint('after the drop')",
        "print('next cell')",
    ]
    run = make_run(tmp_path, cells)
    with RemoteExecutor(alice) as executor:
        observer = DropSocket(executor, after=0.5)
        result = executor.execute(run, observer)

    assert observer.dropped is not None, "the websocket was never dropped"
    assert observer.finished_on is not None
    assert observer.finished_on is not observer.dropped, "no new websocket was opened"
    assert result.error is None, result.error
    first, second = result.notebook.cells
    assert stream_text(first) == "after the drop\n"
    assert stream_text(second) == "next cell\n"
    assert jupyterhub.kernels(USER) == []


def test_output_after_a_websocket_drop_arrives_in_order_with_the_reply(
    jupyterhub: Hub, alice: Server, tmp_path: Path
) -> None:
    """Output the kernel sends while no websocket is open is buffered by the server and
    replayed on reconnect, so a cell that prints all the time ends with its last lines and
    its reply. (What the server wrote into the dying connection before it noticed the
    drop is gone: the protocol cannot replay that, so up to a few lines may be missing.)"""
    cell = "import time\nfor i in range(200):\n    print(i, flush=True)\n    time.sleep(0.01)"
    run = make_run(tmp_path, [cell])
    with RemoteExecutor(alice) as executor:
        observer = DropSocket(executor, after=0.5)
        result = executor.execute(run, observer)

    assert observer.dropped is not None
    assert observer.finished_on is not observer.dropped
    assert result.error is None, result.error
    printed = [int(n) for n in stream_text(result.notebook.cells[0]).split()]
    assert printed == sorted(set(printed)), "lines out of order or repeated"
    assert printed[-1] == 199, "the output after the reconnect is missing"
    assert len(printed) >= 180, f"{200 - len(printed)} of 200 lines lost around the drop"
    assert jupyterhub.kernels(USER) == []


@dataclasses.dataclass(frozen=True)
class StoppedMidRun:
    """What came of a run whose server was stopped under it."""

    result: RunResult
    #: When the stop was asked for, and when the run ended (``time.monotonic()``).
    stop_asked: float
    ended: float
    #: The kernel's process (it ran under the stopped server).
    kernel_pid: int


def stop_under_a_run(hub: Hub, user: str, server: Server, tmp_path: Path) -> StoppedMidRun:
    """Run a 30 s cell on ``user``'s server ``doomed`` and stop that server once it runs."""
    marker = marker_name()
    path = hub.root / "home" / user / marker
    run = make_run(tmp_path, [marking(marker) + "import time\ntime.sleep(30)"])
    asked: list[float] = []
    over = threading.Event()

    def stop_when_running() -> None:
        try:
            wait_for(path, timeout=60, gave_up=over.is_set)
        except AssertionError:
            return
        asked.append(time.monotonic())
        hub.stop_server(user, "doomed")

    stopper = threading.Thread(target=stop_when_running, daemon=True)
    stopper.start()
    try:
        with RemoteExecutor(server) as executor:
            result = executor.execute(run)
        ended = time.monotonic()
    finally:
        over.set()
        stopper.join(timeout=90)
    assert asked, "the server was never stopped"
    kernel_pid = int(path.read_text())
    path.unlink()
    return StoppedMidRun(result, asked[0], ended, kernel_pid)


@pytest.fixture(scope="module")
def alice_stopped_mid_run(
    jupyterhub: Hub, hub_user: HubUser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoppedMidRun]:
    """alice's named server ``doomed`` stopped under a run, while her default server runs.

    Run once for the tests that read it: stopping a server takes seconds.
    """
    url = jupyterhub.start_server(USER, "doomed")
    server = Server(url, hub_user.token, label=f"{USER}/doomed")
    try:
        yield stop_under_a_run(jupyterhub, USER, server, tmp_path_factory.mktemp("doomed"))
    finally:
        if "doomed" in jupyterhub.servers(USER):
            jupyterhub.stop_server(USER, "doomed")


def test_a_server_stopped_mid_run_ends_the_run_in_seconds(
    jupyterhub: Hub, alice_stopped_mid_run: StoppedMidRun
) -> None:
    """Hubs cull idle servers and admins stop them: the run must end at once, not hang
    until the cell timeout, and the kernel must go with the server."""
    outcome = alice_stopped_mid_run
    error = outcome.result.error
    assert isinstance(error, KernelDied), error
    assert error.index == 0
    assert error.how
    assert "\n" not in error.summary
    assert outcome.ended - outcome.stop_asked < 15, "the stop was noticed late"
    assert_dead(outcome.kernel_pid)
    assert "doomed" not in jupyterhub.servers(USER)
    assert jupyterhub.kernels(USER, "doomed") == []
    assert jupyterhub.kernels(USER) == []


def test_a_server_stopped_mid_run_is_reported_as_stopped(
    alice_stopped_mid_run: StoppedMidRun,
) -> None:
    """Told that the kernel was culled, users look at their notebook; told that the server
    stopped, they look at the hub, where the cause is."""
    error = alice_stopped_mid_run.result.error
    assert isinstance(error, KernelDied), error
    assert f"{USER}/doomed stopped" in error.summary, error.summary


def test_a_stopped_server_of_a_user_without_a_default_one_is_reported_as_stopped(
    jupyterhub: Hub, tmp_path: Path
) -> None:
    """With no default server to shadow its URL, the hub itself answers for the stopped
    server, and the report says what happened."""
    user = "dora"
    jupyterhub.add_user(user)
    token = jupyterhub.token_for(user, [scope.format(name=user) for scope in USER_SCOPES])
    url = jupyterhub.start_server(user, "doomed")
    server = Server(url, token, label=f"{user}/doomed")
    try:
        outcome = stop_under_a_run(jupyterhub, user, server, tmp_path)
    finally:
        if "doomed" in jupyterhub.servers(user):
            jupyterhub.stop_server(user, "doomed")

    error = outcome.result.error
    assert isinstance(error, KernelDied), error
    assert f"{user}/doomed stopped" in error.summary, error.summary
    assert "\n" not in error.summary
    assert outcome.ended - outcome.stop_asked < 15
    assert_dead(outcome.kernel_pid)
    assert jupyterhub.servers(user) == {}


# -- faults of the hub client ------------------------------------------------------------------


def known_servers(hub: Hub, user: str) -> dict[str, Any]:
    """``user``'s servers, stopped ones included: a named server removed is not among them."""
    status, model = hub.request("GET", f"/users/{user}?include_stopped_servers")
    assert status == 200, status
    return dict(model.get("servers") or {})


@pytest.fixture
def removed_after(jupyterhub: Hub) -> Iterator[list[str]]:
    """Names of alice's servers a test may leave behind (failed or half-started): each is
    stopped and removed afterwards, so that a later test starts from nothing."""
    names: list[str] = []
    yield names
    for name in names:
        status, _ = jupyterhub.request("DELETE", f"/users/{USER}/servers/{name}", {"remove": True})
        assert status in (202, 204, 404), status
        deadline = time.monotonic() + 30
        while name in known_servers(jupyterhub, USER) and time.monotonic() < deadline:
            time.sleep(0.2)


def fail_a_spawn(hub: Hub, token: str, name: str) -> tuple[HubError, list[str], float]:
    """Start ``name`` with options the hub's spawn hook refuses: the error, the progress
    lines reported and how long it took."""
    lines: list[str] = []
    client = HubClient(hub.url, USER, token)
    started = time.monotonic()
    with pytest.raises(HubError) as caught:
        client.start(name, {"fail": "no such image: nope"}, 60, "test", lines.append)
    return caught.value, lines, time.monotonic() - started


def test_a_failed_spawn_is_one_line_and_leaves_no_server_running(
    jupyterhub: Hub, hub_user: HubUser, removed_after: list[str]
) -> None:
    """A spawn the hub refuses ends the start at once, and nothing runs on its behalf."""
    removed_after.append("broken")
    error, lines, elapsed = fail_a_spawn(jupyterhub, hub_user.token, "broken")

    message = str(error)
    assert message.startswith(f"{USER}/broken on {jupyterhub.url} failed to start"), message
    assert "\n" not in message
    assert hub_user.token not in "\n".join([message, *error.details(), *lines])
    assert elapsed < 30
    assert "broken" not in jupyterhub.servers(USER)
    assert HubClient(jupyterhub.url, USER, hub_user.token).running("broken") is None


def test_a_failed_spawn_says_why_in_the_hubs_words(
    jupyterhub: Hub, hub_user: HubUser, removed_after: list[str]
) -> None:
    """The hub's reason (an image that does not exist, say) is what the user needs."""
    removed_after.append("broken")
    error, _, _ = fail_a_spawn(jupyterhub, hub_user.token, "broken")
    everything = "\n".join([str(error), *error.events, *error.details()])
    assert "no such image: nope" in everything, everything


# -- faults of `pytest --nb` as users run it ---------------------------------------------------


def test_a_start_the_hub_refuses_is_a_usage_error_and_the_server_is_removed(
    jupyterhub: Hub,
    alice_env: HubUser,
    pytester: pytest.Pytester,
    trivial: Path,
    removed_after: list[str],
) -> None:
    """nbharness stops (and removes) the servers it started, also when their start failed:
    a half-made server must not linger on the hub."""
    removed_after.append("refused")
    pytester.makepyprojecttoml('[tool.nbharness.hub]\nuser_options = {fail = "no such image"}\n')
    result = pytester.runpytest_subprocess(
        *on_hub(jupyterhub, "--nb-hub-server", "refused"), trivial.name, timeout=120
    )
    line = refusal(result, alice_env.token)
    assert f"{USER}/refused on {jupyterhub.url} failed to start" in line, line
    assert "refused" not in known_servers(jupyterhub, USER), "the failed server was left"


def test_a_server_too_slow_to_start_is_a_usage_error_and_is_stopped(
    jupyterhub: Hub,
    alice_env: HubUser,
    pytester: pytest.Pytester,
    trivial: Path,
    removed_after: list[str],
) -> None:
    """A start timeout names the flag to raise; the half-started server must not linger."""
    removed_after.append("slow")
    result = pytester.runpytest_subprocess(
        *on_hub(jupyterhub, "--nb-hub-server", "slow", "--nb-hub-start-timeout", "0.5"),
        trivial.name,
        timeout=120,
    )
    deadline = time.monotonic() + 10
    while "slow" in jupyterhub.servers(USER) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "slow" not in jupyterhub.servers(USER), "the server nbharness started was left"
    line = refusal(result, alice_env.token)
    assert "--nb-hub-start-timeout" in line, line
    assert f"{USER}/slow" in line, line


def sleepy_notebooks(hub: Hub, folder: Path, names: list[str]) -> Path:
    """Notebooks ``names``: the first says it runs (its kernel's pid in a marker file in
    alice's home, which is returned) and sleeps 60 s; the others print and end."""
    marker = marker_name()
    cells: list[Cell] = [marking(marker) + "import time\ntime.sleep(60)"]
    for index, name in enumerate(names):
        notebook = build_notebook(cells if index == 0 else [f"print({name!r})"])
        nbformat.write(notebook, folder / name)
    return home(hub) / marker


def interrupt_pytest(
    hub: Hub, token: str, folder: Path, marker: Path, sig: signal.Signals, args: list[str]
) -> tuple[int, float, str, int]:
    """Run ``pytest --nb`` on alice's server, send ``sig`` once the first cell runs: its exit
    code, the seconds from the signal to the exit, its output and the kernel's pid."""
    log = folder / "pytest.log"
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": token}
    command = [sys.executable, "-m", "pytest", *on_hub(hub), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        try:
            kernel_pid = int(wait_for(marker, 60, gave_up=lambda: process.poll() is not None))
        except AssertionError:
            raise AssertionError(
                f"the cell never ran:\n{log.read_text(errors='replace')}"
            ) from None
        signalled = time.monotonic()
        process.send_signal(sig)
        code = process.wait(timeout=30)
        elapsed = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        marker.unlink(missing_ok=True)
    return code, elapsed, log.read_text(errors="replace"), kernel_pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signalled_pytest_exits_soon_and_deletes_its_kernel(
    jupyterhub: Hub, alice_env: HubUser, pytester: pytest.Pytester, sig: signal.Signals
) -> None:
    """A cancelled CI job (SIGTERM) or Ctrl-C must not leave a kernel computing on the
    user's server: nobody would ever delete it."""
    marker = sleepy_notebooks(jupyterhub, pytester.path, ["sleepy.ipynb"])
    code, elapsed, output, kernel_pid = interrupt_pytest(
        jupyterhub, alice_env.token, pytester.path, marker, sig, ["sleepy.ipynb"]
    )

    assert code != 0, output
    if sig == signal.SIGINT:
        assert code == 2, output  # pytest's "interrupted"
        assert "KeyboardInterrupt" in output
    assert elapsed < 15, output
    assert alice_env.token not in output
    assert jupyterhub.kernels(USER) == []
    assert_dead(kernel_pid)


def test_sigterm_stops_the_session_like_ctrl_c(
    jupyterhub: Hub, alice_env: HubUser, pytester: pytest.Pytester
) -> None:
    """A cancelled CI job must stop at once: not report a kernel death that did not happen,
    nor go on running (and starting kernels for) the notebooks left."""
    names = ["a_sleepy.ipynb", "b_next.ipynb"]
    marker = sleepy_notebooks(jupyterhub, pytester.path, names)
    code, elapsed, output, _ = interrupt_pytest(
        jupyterhub, alice_env.token, pytester.path, marker, signal.SIGTERM, names
    )

    assert elapsed < 15, output
    assert jupyterhub.kernels(USER) == []
    assert "kernel died" not in output, output
    assert "b_next.ipynb ." not in output, "the next notebook ran after SIGTERM"
    assert code == 2, output


def test_sigterm_while_a_test_questions_a_live_kernel_deletes_it(
    jupyterhub: Hub, alice_env: HubUser, pytester: pytest.Pytester
) -> None:
    """The ``notebook`` fixture keeps the kernel up after the run: a cancelled job must
    still delete it."""
    marker = marker_name()
    question = marking(marker) + "import time\ntime.sleep(60)"
    nbformat.write(build_notebook(["x = 1"]), pytester.path / "quick.ipynb")
    pytester.makepyfile(
        test_live=f"""
        def test_it(notebook):
            nb = notebook("quick.ipynb")
            nb.execute({question!r})
        """
    )
    try:
        code, elapsed, output, _ = interrupt_pytest(
            jupyterhub,
            alice_env.token,
            pytester.path,
            home(jupyterhub) / marker,
            signal.SIGTERM,
            ["test_live.py"],
        )
        left = jupyterhub.kernels(USER)
    finally:
        delete_kernels(alice_env)

    assert elapsed < 15, output
    assert alice_env.token not in output
    assert left == [], f"{len(left)} kernels left on alice's server; exit code {code}"
    assert code == 2, output


def test_an_unreachable_hub_is_one_line_and_quick(
    alice_env: HubUser, pytester: pytest.Pytester, trivial: Path
) -> None:
    """A wrong URL or a hub that is down must not look like a failing notebook."""
    (port,) = free_ports(1)
    hub_url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--nb",
        "--nb-hub-url",
        hub_url,
        "--nb-hub-user",
        USER,
        "-p",
        "no:cacheprovider",
        trivial.name,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    line = refusal(result, alice_env.token)
    assert f"cannot reach {hub_url}" in line, line
    assert elapsed < 10


@pytest.fixture(params=["made-up", "expired"])
def bad_token(request: pytest.FixtureRequest, jupyterhub: Hub, hub_user: HubUser) -> str:
    """A token the hub does not know, or one of alice's that expired."""
    if request.param == "made-up":
        return "0123456789abcdef" * 2
    scopes = [scope.format(name=USER) for scope in USER_SCOPES]
    token = jupyterhub.token_for(USER, scopes, expires_in=1)
    time.sleep(2.5)
    return token


def test_a_refused_token_is_one_line_without_the_token(
    jupyterhub: Hub,
    hub_user: HubUser,
    bad_token: str,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    trivial: Path,
) -> None:
    """Nothing works with a wrong or expired token: say so first, not what failed next."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", bad_token)
    result = pytester.runpytest_subprocess(*on_hub(jupyterhub), trivial.name, timeout=60)
    line = refusal(result, bad_token)
    assert "token was refused" in line, line
    assert jupyterhub.kernels(USER) == []


def test_a_token_without_access_names_the_scope_it_needs(
    jupyterhub: Hub,
    hub_user: HubUser,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    trivial: Path,
) -> None:
    """A token that may start servers but not use them: the fix is a scope, so name it."""
    token = jupyterhub.token_for(USER, [f"servers!user={USER}"])
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", token)
    result = pytester.runpytest_subprocess(*on_hub(jupyterhub), trivial.name, timeout=60)
    line = refusal(result, token)
    assert f"access:servers!user={USER}" in line, line
    assert jupyterhub.kernels(USER) == []
