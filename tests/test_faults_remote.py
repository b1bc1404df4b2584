"""Remote runs that must never print a secret, hang or leak, on a real JupyterHub: a token
with a line break inside, a URL that answers with a web page, a kernel-slot wait held by
another run, and pytest interrupted while it starts servers or kernels.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbharness.execute import Run
from nbharness.execute.remote import RemoteExecutor
from nbharness.execute.websocket import KernelSocket
from nbharness.jupyter_api.hub import Hub as HubClient
from nbharness.jupyter_api.rest import RemoteError, Rest, Server
from nbharness.jupyter_api.slots import KernelSlots, NoFreeSlot

from .helpers import build_notebook
from .hubfixture import Hub, HubUser, http

pytestmark = pytest.mark.hub

USER = "alice"
#: A usage error: what pytest exits with when nbharness cannot set up its servers.
USAGE_ERROR = 4


def on_hub(hub: Hub, *args: str) -> list[str]:
    """``pytest --nb`` on alice's servers of ``hub``."""
    return ["--nb", "--nb-hub-url", hub.url, "--nb-hub-user", USER, "-p", "no:cacheprovider", *args]


def refusal(result: pytest.RunResult, *secrets: str) -> str:
    """The one line a refused run ends with: a usage error, alone, with no traceback and
    none of ``secrets`` (nor any of their lines) anywhere in the output."""
    output = "\n".join([*result.outlines, *result.errlines])
    assert result.ret == USAGE_ERROR, output
    for secret in secrets:
        for part in secret.split():
            assert part not in output, "a secret was printed"
    assert "Traceback" not in output, output
    assert "INTERNALERROR" not in output, output
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, output
    assert errors[0].startswith("ERROR: "), output
    return errors[0]


@pytest.fixture
def trivial(pytester: pytest.Pytester) -> Path:
    """A notebook that passes anywhere: the runs that use it must fail before it runs."""
    path = pytester.path / "trivial.ipynb"
    nbformat.write(build_notebook(["1 + 1"]), path)
    return path


@pytest.fixture
def alice_env(hub_user: HubUser, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubUser]:
    """alice's token where ``pytest --nb`` looks for it; no kernel may outlive the test."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub_user.token)
    yield hub_user
    assert hub_user.hub.kernels(USER) == []


# -- 4.2: a token with a line break inside ---------------------------------------------------


def two_line_token(hub_user: HubUser) -> str:
    """alice's token with a second line after it, as a careless copy-and-paste makes one."""
    return f"{hub_user.token}\n{hub_user.token[::-1]}"


def test_a_token_file_of_two_lines_is_refused_in_one_line_that_names_the_file(
    jupyterhub: Hub, hub_user: HubUser, pytester: pytest.Pytester, trivial: Path
) -> None:
    token_file = pytester.path / "token.txt"
    token_file.write_text(two_line_token(hub_user) + "\n")
    result = pytester.runpytest_subprocess(
        *on_hub(jupyterhub, "--nb-hub-token-file", str(token_file)), trivial.name, timeout=60
    )
    line = refusal(result, two_line_token(hub_user))
    assert "--nb-hub-token-file" in line, line
    assert "token.txt" in line, line
    assert "whitespace or control characters" in line, line


def test_a_token_variable_with_a_line_break_is_refused_in_one_line_that_names_it(
    jupyterhub: Hub,
    hub_user: HubUser,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    trivial: Path,
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", two_line_token(hub_user))
    result = pytester.runpytest_subprocess(*on_hub(jupyterhub), trivial.name, timeout=60)
    line = refusal(result, two_line_token(hub_user))
    assert "$JUPYTERHUB_API_TOKEN" in line, line


def test_a_header_the_http_library_refuses_is_a_remote_error_without_the_token(
    jupyterhub: Hub, hub_user: HubUser
) -> None:
    """The last line of defence: whatever way a bad token reaches the client, its error
    is ours and redacted."""
    token = two_line_token(hub_user)
    with pytest.raises(RemoteError) as caught:
        Rest(f"{jupyterhub.url}/hub/api/", token).get("")
    for part in token.split():
        assert part not in str(caught.value)


# -- 4.4: a URL that answers 200 with something that is not JSON -----------------------------


def test_a_server_url_with_a_token_query_is_one_line_with_a_hint(
    hub_user: HubUser,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    trivial: Path,
) -> None:
    """The URL as Jupyter prints it (``…/?token=…``) answers with the server's login page."""
    monkeypatch.setenv("JUPYTER_TOKEN", hub_user.token)
    url = f"{hub_user.server_url}?token={hub_user.token}"
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--nb", "--nb-server-url", url, "-p", "no:cacheprovider", trivial.name, timeout=60
    )
    line = refusal(result, hub_user.token)
    assert "text/html, not JSON" in line, line
    assert "$JUPYTER_TOKEN" in line, line
    assert time.monotonic() - started < 30


# -- 4.12: the kernel-slot wait --------------------------------------------------------------


@pytest.fixture
def private_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$XDG_RUNTIME_DIR`` (0700, ours), so no test shares slots with another."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


@pytest.mark.parametrize("flag", ["--nb-max-kernels", "--nb-hub-max-kernels"])
def test_a_run_waiting_for_a_held_kernel_slot_fails_at_the_startup_timeout_naming_the_holder(
    jupyterhub: Hub,
    alice_env: HubUser,
    pytester: pytest.Pytester,
    private_runtime: Path,
    flag: str,
) -> None:
    """Another run (here: this test) holds the only slot and never lets go: the notebook
    fails once its kernel's startup timeout is spent, saying what it waited for and who
    holds it, and naming the flag that set the cap (either spelling), instead of waiting
    silently forever."""
    nbformat.write(build_notebook(["1 + 1"]), pytester.path / "capped.ipynb")
    slots = KernelSlots(alice_env.server_url, 1)
    held = slots.acquire(timeout=1)
    try:
        started = time.monotonic()
        result = pytester.runpytest_subprocess(
            *on_hub(jupyterhub, flag, "1", "--nb-startup-timeout", "2"),
            "capped.ipynb",
            timeout=45,
        )
        elapsed = time.monotonic() - started
    finally:
        KernelSlots.release(held)
    output = "\n".join(result.outlines)
    result.assert_outcomes(failed=1)
    assert "no kernel slot came free within 2 s" in output, output
    assert f"by pid {os.getpid()}" in output, output
    assert f"({flag} 1, --nb-startup-timeout)" in output, output
    assert elapsed < 30


def test_kernel_slots_live_in_a_private_folder_of_this_user(private_runtime: Path) -> None:
    slots = KernelSlots("http://example.org/user/alice/", 2)
    fd = slots.acquire(timeout=1)
    try:
        info = slots.folder.stat()
        assert slots.folder.parent == private_runtime
        assert info.st_uid == os.getuid()
        assert stat.S_IMODE(info.st_mode) == 0o700
    finally:
        KernelSlots.release(fd)


def test_a_slot_folder_made_by_someone_else_is_refused(private_runtime: Path) -> None:
    """Whoever made the folder could hold every slot (or swap the lock files)."""
    if os.getuid() != 0:
        pytest.skip("making a folder owned by another user needs root")
    slots = KernelSlots("http://example.org/user/alice/", 1)
    slots.folder.mkdir(mode=0o700)
    os.chown(slots.folder, 65534, 65534)
    with pytest.raises(NoFreeSlot, match="not a private folder of yours"):
        slots.acquire(timeout=1)


# -- 5.13: a message sent while a dropped websocket is reopened ------------------------------


class SendWhileDropped:
    """Cuts the kernel's websocket while the first cell runs, and sends a request on the
    control channel in the moment the client asks the server whether the kernel is still
    there, when the old websocket is closed and the new one is not open yet."""

    def __init__(self, executor: RemoteExecutor) -> None:
        self.executor = executor
        self.socket: KernelSocket | None = None
        self.request_id = ""

    def cell_started(self, index: int, cell: nbformat.NotebookNode) -> None:
        if index != 0:
            return
        (km,) = self.executor.kernels
        socket = self.socket = km.socket
        assert socket is not None
        ask = socket.check

        async def send_then_ask() -> str | None:
            request = km.session.msg("kernel_info_request")
            self.request_id = request["header"]["msg_id"]
            socket.send("control", request)
            return await ask()

        socket.check = send_then_ask
        asyncio.get_running_loop().call_later(0.3, self._drop)

    def _drop(self) -> None:
        assert self.socket is not None
        assert self.socket._ws is not None
        self.socket._ws.stream.close()  # as a network failure would

    def cell_finished(self, index: int, cell: nbformat.NotebookNode) -> None:
        pass

    def replied(self) -> bool:
        assert self.socket is not None
        queue = self.socket.queues["control"]
        replies = []
        while not queue.empty():
            replies.append(queue.get_nowait())
        return any(msg.get("parent_header", {}).get("msg_id") == self.request_id for msg in replies)


def test_a_message_sent_while_the_websocket_reopens_is_sent_on_the_new_one(
    jupyterhub: Hub, hub_user: HubUser, tmp_path: Path
) -> None:
    server = Server(hub_user.server_url, hub_user.token, label=f"{USER}/")
    notebook = build_notebook(["import time\ntime.sleep(1.5)\nprint('after the drop')"])
    run = Run(tmp_path / "drop.ipynb", notebook, tmp_path, cell_timeout=10)
    with RemoteExecutor(server) as executor:
        observer = SendWhileDropped(executor)
        result = executor.execute(run, observer)

    assert observer.request_id, "the websocket was never dropped"
    assert result.error is None, result.error
    assert observer.replied(), "the request sent meanwhile was lost"
    assert jupyterhub.kernels(USER) == []


# -- 5.12: pytest interrupted while it starts named servers ----------------------------------


def known_servers(hub: Hub) -> dict[str, Any]:
    """alice's servers, stopped ones included: a named server removed is not among them."""
    status, model = hub.request("GET", f"/users/{USER}?include_stopped_servers")
    assert status == 200, status
    return dict(model.get("servers") or {})


@pytest.fixture
def pool_removed_after(jupyterhub: Hub) -> Iterator[str]:
    """A prefix for a pool of named servers; whatever a failed test left of it is removed."""
    prefix = f"intr{uuid.uuid4().hex[:6]}"
    yield prefix
    for name in known_servers(jupyterhub):
        if name.startswith(prefix):
            jupyterhub.stop_server(USER, name)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_an_interrupt_while_named_servers_start_stops_them(
    jupyterhub: Hub,
    alice_env: HubUser,
    pytester: pytest.Pytester,
    trivial: Path,
    pool_removed_after: str,
    sig: signal.Signals,
) -> None:
    """A cancelled job must not leave servers (pods, on Kubernetes) that no later run will
    ever stop: the signal comes once the hub lists a server of the pool as starting."""
    prefix = pool_removed_after
    args = ["--nb-hub-servers", "2", "--nb-hub-server", prefix, "-n", "2", trivial.name]
    log = pytester.path / "pytest.log"
    command = [sys.executable, "-m", "pytest", *on_hub(jupyterhub, *args)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=pytester.path, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while not any(name.startswith(prefix) for name in jupyterhub.servers(USER)):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no server of the pool ever started"
            time.sleep(0.05)
        process.send_signal(sig)
        code = process.wait(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text(errors="replace")
    left = [name for name in known_servers(jupyterhub) if name.startswith(prefix)]
    assert left == [], f"servers left on the hub: {left}\n{output}"
    assert code == 2, output  # pytest's "interrupted"
    assert alice_env.token not in output


# -- 5.10: the executor closed while a kernel's start is under way ---------------------------


class SlowProxy:
    """A loopback TCP proxy to the hub that holds each chunk of every answer for ``delay``
    seconds, and says when a kernel's start (``POST …/api/kernels``) has gone through."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.kernel_posted = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.upstream)
            for source, sink, delay in ((client, server, 0.0), (server, client, self.delay)):
                thread = threading.Thread(target=self._pump, args=(source, sink, delay))
                thread.start()
                self.threads.append(thread)

    def _pump(self, source: socket.socket, sink: socket.socket, delay: float) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if b"POST " in chunk and b"/api/kernels " in chunk:
                    self.kernel_posted.set()
                time.sleep(delay)
                sink.sendall(chunk)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()
        for thread in self.threads:
            thread.join(10)


def test_closing_while_a_kernel_starts_deletes_that_kernel_too(
    jupyterhub: Hub, hub_user: HubUser
) -> None:
    """Ctrl-C stops the run, not the thread whose POST is starting its kernel: the
    executor's close must wait for that answer and delete the kernel it names."""
    hub = urllib.parse.urlsplit(jupyterhub.url)
    proxy = SlowProxy((hub.hostname or "127.0.0.1", hub.port or 80), delay=1.5)
    path = urllib.parse.urlsplit(hub_user.server_url).path
    server = Server(f"http://127.0.0.1:{proxy.port}{path}", hub_user.token, label=f"{USER}/")
    started: list[str] = []
    try:
        with RemoteExecutor(server, spare=False) as executor:
            starter = threading.Thread(
                target=lambda: started.append(executor.new_kernel("python3"))
            )
            starter.start()
            assert proxy.kernel_posted.wait(30), "the kernel's start never went out"
        starter.join(30)
        left = jupyterhub.kernels(USER)
    finally:
        proxy.close()
        for kernel in jupyterhub.kernels(USER):
            http("DELETE", f"{hub_user.server_url}api/kernels/{kernel['id']}", token=hub_user.token)
    assert started, "the kernel's start failed"
    assert left == [], f"{len(left)} kernel left on alice's server"


# -- 5.15: a server name that cannot be part of a URL path -----------------------------------


def test_a_server_name_with_a_slash_is_refused_in_one_line(
    jupyterhub: Hub, alice_env: HubUser, pytester: pytest.Pytester, trivial: Path
) -> None:
    result = pytester.runpytest_subprocess(
        *on_hub(jupyterhub, "--nb-hub-server", "a/b"), trivial.name, timeout=60
    )
    line = refusal(result, alice_env.token)
    assert "--nb-hub-server a/b: a server name cannot contain '/'" in line, line


def test_a_server_name_is_quoted_in_the_hubs_urls(jupyterhub: Hub, hub_user: HubUser) -> None:
    """A name is one path segment: '?' or '#' in it must not end the path."""
    hub = HubClient(jupyterhub.url, USER, hub_user.token)
    assert hub.running("x?y#z") is None
    assert hub.server("x?y").url.endswith(f"/user/{USER}/x%3Fy/")


def test_a_server_name_the_hub_refuses_fails_at_once_not_at_the_start_timeout(
    jupyterhub: Hub, alice_env: HubUser, pytester: pytest.Pytester, trivial: Path
) -> None:
    # The hub answers 400 to an invalid name: asking again until the start timeout (5
    # minutes by default) cannot help. Found by the trial's re-run.
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        *on_hub(jupyterhub, "--nb-hub-server", "a b", "--nb-hub-start-timeout", "60"),
        trivial.name,
        timeout=90,
    )
    line = refusal(result, alice_env.token)
    assert time.monotonic() - started < 30, line
    assert "400" in line, line
