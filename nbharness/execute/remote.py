"""Runs notebooks on kernels of a remote Jupyter server: a JupyterHub user's server, a
plain Jupyter server or a kernel gateway.

The notebook file is read here; its code runs there. Each run gets its own kernel,
started with ``POST /api/kernels`` and driven by nbclient over the kernel websocket
(``websocket.py``), and is deleted afterwards whatever happened: a pass, a failure, a
timeout, Ctrl-C or SIGTERM. A kernel that died must be deleted too, since the server
restarts it. Kernels this executor did not start are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from jupyter_client.client import KernelClient
from jupyter_client.manager import AsyncKernelManager

from ..config.remote import HUB_TOKEN_ENV, SERVER_TOKEN_ENV, read_token
from ..errors import KernelNotFound, KernelStartFailed, NbHarnessError
from ..jupyter_api.hub import Hub
from ..jupyter_api.rest import RemoteError, Rest, Server
from ..jupyter_api.slots import KernelSlots, NoFreeSlot
from . import CellObserver, ClosesOnExit, ExecutorSettings, Run, RunResult
from .launch import ReadyOnReply
from .session import KernelSession
from .signals import InterruptOnTerm
from .websocket import KernelSocket

#: Statuses that mean the server itself is gone (stopped, culled, being restarted).
SERVER_GONE = {302, 303, 424}
#: How long one REST request may take: clean-up after Ctrl-C must never hang for long.
REQUEST_TIMEOUT_S = 10.0
#: How long to wait, after a websocket dropped, for the server to notice before reconnecting.
RECONNECT_WAIT_S = 10.0
#: How long the kernel's websocket may take to open.
CONNECT_TIMEOUT_S = 30.0


class RemoteExecutor(ClosesOnExit):
    """Runs each notebook on a new kernel of ``server``.

    ``remote_cwd`` is the kernels' working directory relative to the server's root
    (``None``: the root). A kernel takes the server about 0.4 s to start and 0.2 s to
    delete, so while a notebook runs the next run's kernel is already starting (a
    *spare*, never used twice), and used kernels are deleted in the background. Closing
    deletes every kernel this executor created that is still there, and nothing else.
    With ``max_kernels`` set there is no spare: it would count against the cap.
    """

    def __init__(
        self,
        server: Server,
        remote_cwd: str | None = None,
        max_kernels: int | None = None,
        spare: bool = True,
    ) -> None:
        self.server = server
        self.remote_cwd = remote_cwd
        self.slots = KernelSlots(server.url, max_kernels) if max_kernels else None
        self.rest = server.rest(timeout=REQUEST_TIMEOUT_S)
        #: Live runs' kernel managers (their websockets), and every kernel id we created
        #: that is not deleted yet.
        self.kernels: set[RemoteKernelManager] = set()
        self.owned: set[str] = set()
        self._lock = threading.Lock()
        #: Kernel starts under way (a POST sent, its answer not in yet), and their end.
        self._starting = 0
        self._started = threading.Condition(self._lock)
        self._background = ThreadPoolExecutor(2, thread_name_prefix="nbharness-kernels")
        self._spare: tuple[str, Future[str]] | None = None
        self._keeps_spare = spare and max_kernels is None
        self._kernelspecs: list[str] | None = None
        self._term = InterruptOnTerm()

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> RemoteExecutor:
        """The executor on ``settings.server``, or else on the server the ``NBHARNESS_*``
        environment names (``NBHARNESS_REMOTE_CWD`` then sets the working directory)."""
        if settings.server is not None:
            return cls(settings.server, settings.remote_cwd, settings.max_kernels, settings.spare)
        cwd = settings.remote_cwd or os.environ.get("NBHARNESS_REMOTE_CWD") or None
        return cls(server_from_environment(), cwd, settings.max_kernels, settings.spare)

    def __enter__(self) -> RemoteExecutor:
        self._term.__enter__()
        return self

    def close(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            spare[1].cancel()
        self._background.shutdown(wait=True)  # background deletes and a spare's start
        with self._started:  # a run's own start, in a thread Ctrl-C did not stop
            self._started.wait_for(lambda: not self._starting, timeout=REQUEST_TIMEOUT_S * 2)
        for kernel_id in sorted(self.owned):
            self._delete(kernel_id)
        for kernel_id in sorted(self.owned):
            print(
                f"nbharness: could not delete kernel {kernel_id} on {self.server.label}",
                file=sys.stderr,
            )
        self._term.__exit__()

    def execute(self, run: Run, observer: CellObserver | None = None) -> RunResult:
        with self.open(run, observer) as live:
            return live.result

    def open(self, run: Run, observer: CellObserver | None = None) -> KernelSession:
        session = KernelSession(_with_env_prologue(run), RemoteKernel(self), observer)
        session.execute()
        return session

    def kernelspecs(self) -> list[str]:
        """The kernels the server offers; the first request, so a bad token fails here."""
        if self._kernelspecs is None:
            model = self.rest.get("api/kernelspecs") or {}
            self._kernelspecs = sorted(model.get("kernelspecs", {}))
        return self._kernelspecs

    def new_kernel(self, name: str) -> str:
        """A fresh kernel's id: the spare when it is of this kind, else a new one."""
        spare, self._spare = self._spare, None
        kernel_id = None
        if spare is not None:
            try:
                spare_id = spare[1].result()
            except RemoteError:
                spare_id = None  # asking again says why, in this run's words
            if spare[0] == name:
                kernel_id = spare_id
            elif spare_id is not None:
                self.retire(spare_id)
        if kernel_id is None:
            kernel_id = self._start(name)
        if self._keeps_spare:
            self._spare = (name, self._background.submit(self._start, name))
        return kernel_id

    def retire(self, kernel_id: str, then: Callable[[], None] | None = None) -> None:
        """Delete a kernel in the background (the next run need not wait), then ``then``."""

        def delete() -> None:
            try:
                self._delete(kernel_id)
            finally:
                if then is not None:
                    then()

        try:
            self._background.submit(delete)
        except RuntimeError:  # shutting down: delete now
            delete()

    def _start(self, name: str) -> str:
        body = {"name": name}
        if self.remote_cwd:
            body["path"] = self.remote_cwd
        with self._lock:
            self._starting += 1
        try:
            model = self.rest.post("api/kernels", body)
            kernel_id = str(model["id"])
            with self._lock:
                self.owned.add(kernel_id)
        finally:
            with self._started:
                self._starting -= 1
                self._started.notify_all()
        return kernel_id

    def _delete(self, kernel_id: str) -> None:
        """Delete the kernel, dead or not: the server would restart a dead one."""
        try:
            self.rest.delete(f"api/kernels/{kernel_id}")
        except RemoteError as exc:
            if exc.status not in SERVER_GONE | {404}:
                return  # still ours: close() tries again, then names it
        with self._lock:
            self.owned.discard(kernel_id)


def server_from_environment() -> Server:
    """The server papermill's engine runs on with ``NBHARNESS_EXECUTOR=remote``: a running
    hub server (``NBHARNESS_HUB_URL``, ``NBHARNESS_HUB_USER``, optional
    ``NBHARNESS_HUB_SERVER``; token ``JUPYTERHUB_API_TOKEN``) or a Jupyter server
    (``NBHARNESS_SERVER_URL``; token ``JUPYTER_TOKEN``)."""
    env = os.environ
    if env.get("NBHARNESS_HUB_URL"):
        user, name = env.get("NBHARNESS_HUB_USER", ""), env.get("NBHARNESS_HUB_SERVER", "")
        if not user:
            raise NbHarnessError("NBHARNESS_HUB_URL is set: set NBHARNESS_HUB_USER too")
        hub = Hub(env["NBHARNESS_HUB_URL"], user, read_token(HUB_TOKEN_ENV))
        server = hub.running(name)
        if server is None:
            raise NbHarnessError(f"{hub.label(name)} on {hub.url} is not running: start it first")
        return server
    if env.get("NBHARNESS_SERVER_URL"):
        return Server(env["NBHARNESS_SERVER_URL"], read_token(SERVER_TOKEN_ENV))
    raise NbHarnessError("the remote executor needs NBHARNESS_HUB_URL or NBHARNESS_SERVER_URL")


def _with_env_prologue(run: Run) -> Run:
    """``run`` with its environment set by code run before the first cell: a remote
    kernel's environment is the server's."""
    if not run.env:
        return run
    setup = f"__import__('os').environ.update({json.dumps(dict(run.env))})\n"
    return dataclasses.replace(run, prologue=setup + run.prologue)


class RemoteKernel:
    """A kernel of the executor's server (a ``KernelBackend``)."""

    def __init__(self, executor: RemoteExecutor) -> None:
        self.executor = executor
        self.km: RemoteKernelManager | None = None

    def missing(self, run: Run, name: str, source: str) -> NbHarnessError | None:
        try:
            available = self.executor.kernelspecs()
        except RemoteError as exc:
            return exc
        if name in available:
            return None
        where = self.executor.server.label
        return KernelNotFound(name, available, where=f"on {where}")

    def manager(self, run: Run, name: str) -> RemoteKernelManager:
        self.km = RemoteKernelManager(
            self.executor, name, run.startup_timeout, run.startup_timeout_source
        )
        return self.km

    def start_options(self, run: Run) -> dict[str, Any]:
        return {}  # the environment is set by the run's prologue

    def _remote(self) -> RemoteKernelManager:
        assert self.km is not None
        return self.km

    def death(self, starting: bool) -> tuple[str, str]:
        lost = self._remote().lost
        if starting:
            return "", lost or "the server gave no reason"
        return lost or "", ""

    def timed_out(self) -> None:
        """Interrupt the cell first: the kernel is deleted next, but a busy kernel on a
        shared server should stop computing at once."""
        with contextlib.suppress(RemoteError):
            self._remote().interrupt()

    def warnings(self, result: RunResult) -> list[str]:
        km = self._remote()
        if km.socket is not None and km.socket.rate_limited:
            return [
                f"{self.executor.server.label} dropped output over its iopub rate limit; raise "
                "ServerApp.iopub_data_rate_limit / iopub_msg_rate_limit on the server to keep it"
            ]
        return []

    async def stop(self, kc: KernelClient | None) -> None:
        km = self._remote()
        if km.socket is not None:
            await km.socket.close()
        km.release()


class RemoteKernelManager(AsyncKernelManager):
    """A kernel on a Jupyter server, started and deleted over its REST API.

    It plugs into nbclient where a local kernel manager would; everything nbclient asks
    of a kernel goes over REST (start, interrupt, delete) or the websocket (messages).
    """

    def __init__(
        self,
        executor: RemoteExecutor,
        kernel_name: str,
        startup_timeout: float = 60.0,
        startup_timeout_source: str = "--nb-startup-timeout",
    ) -> None:
        super().__init__(kernel_name=kernel_name)
        self.executor = executor
        self.server = executor.server
        self.rest: Rest = executor.rest
        self.remote_id: str | None = None
        self.socket: KernelSocket | None = None
        #: The kernel slot held while the kernel lives, when kernels per server are capped.
        self.slot: int | None = None
        self.startup_timeout = startup_timeout
        self.startup_timeout_source = startup_timeout_source

    def __hash__(self) -> int:
        return id(self)

    @property
    def has_kernel(self) -> bool:
        return self.remote_id is not None

    @property
    def ipykernel(self) -> bool:
        return False  # no local history file to point it at

    @property
    def lost(self) -> str | None:
        return self.socket.lost if self.socket is not None else None

    async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
        slots = self.executor.slots
        if slots is not None:
            self.slot = await asyncio.to_thread(self._slot, slots)
        try:
            self.remote_id = await asyncio.to_thread(self.executor.new_kernel, self.kernel_name)
        except BaseException:
            KernelSlots.release(self.slot)
            self.slot = None
            raise
        self.executor.kernels.add(self)

    def _slot(self, slots: KernelSlots) -> int | None:
        """A kernel slot on the server, waited for within the kernel's startup timeout."""
        try:
            return slots.acquire(self.startup_timeout)
        except NoFreeSlot as exc:
            raise KernelStartFailed(
                f"kernel {self.kernel_name!r} could not start on {self.server.label}: {exc} "
                f"(--nb-hub-max-kernels {slots.count}, {self.startup_timeout_source})"
            ) from None

    def client(self, **kwargs: Any) -> RemoteKernelClient:  # type: ignore[override]
        assert self.remote_id is not None
        url = f"{self.server.ws_url}api/kernels/{self.remote_id}/channels"
        kc = RemoteKernelClient(parent=self, session=self.session, log=self.log)
        # The same session id on reconnect makes the server replay what it buffered.
        kc.socket = self.socket = KernelSocket(
            f"{url}?session_id={self.session.session}",
            self.server.rest().headers,
            self._check,
        )
        return kc

    async def is_alive(self) -> bool:  # type: ignore[override]
        return self.has_kernel and self.lost is None

    async def interrupt_kernel(self) -> None:  # type: ignore[override]
        await asyncio.to_thread(self.interrupt)

    def interrupt(self) -> None:
        if self.remote_id is not None:
            self.rest.post(f"api/kernels/{self.remote_id}/interrupt")

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:  # type: ignore[override]
        self.release()

    async def cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        """Nothing local to clean: the server owns the kernel's process and files."""

    def release(self) -> None:
        """Hand the kernel back to the executor to delete, and its slot once it is gone."""
        kernel_id, self.remote_id = self.remote_id, None
        slot, self.slot = self.slot, None
        self.executor.kernels.discard(self)
        if kernel_id is not None:
            self.executor.retire(kernel_id, lambda: KernelSlots.release(slot))
        else:
            KernelSlots.release(slot)

    async def _check(self) -> str | None:
        """After the websocket dropped: ``None`` once it is safe to reconnect, else why the
        kernel is lost.

        Safe means the server has seen the old connection go: only then does it buffer
        the kernel's messages (the reply to the running cell goes to the old connection)
        and replay them to the new one. A server that has not noticed a dead connection
        replaces it on reconnect without buffering, so we wait, within reason, for its
        count of connections to reach zero.
        """
        deadline = time.monotonic() + RECONNECT_WAIT_S
        while True:
            try:
                model = await asyncio.to_thread(self.rest.get, f"api/kernels/{self.remote_id}")
            except RemoteError as exc:
                if exc.missing:
                    return "the kernel is gone: the server deleted or culled it"
                if exc.status == 404:  # the proxy sent the server's URL elsewhere: it stopped
                    return f"{self.server.label} stopped (its URL now answers HTTP 404)"
                if exc.status in SERVER_GONE:
                    return f"{self.server.label} stopped (HTTP {exc.status}) while the kernel ran"
                return f"the websocket closed and the server cannot be asked why: {exc}"
            if not (model or {}).get("connections") or time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)


class RemoteKernelClient(ReadyOnReply):
    """The kernel's channels as nbclient expects them, carried over one websocket."""

    socket: KernelSocket

    async def start_channels(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        await self.socket.connect(timeout=CONNECT_TIMEOUT_S)

    async def stop_channels(self) -> None:  # type: ignore[override]
        await self.socket.close()

    @property
    def channels_running(self) -> bool:
        return self.socket.lost is None

    async def is_alive(self) -> bool:
        return self.socket.lost is None

    _async_is_alive = is_alive

    @property
    def shell_channel(self) -> _Channel:
        return _Channel(self.socket, "shell")

    @property
    def iopub_channel(self) -> _Channel:
        return _Channel(self.socket, "iopub")

    @property
    def stdin_channel(self) -> _Channel:
        return _Channel(self.socket, "stdin")

    @property
    def control_channel(self) -> _Channel:
        return _Channel(self.socket, "control")


class _Channel:
    """One channel of the websocket, with the calls jupyter_client's channels offer."""

    def __init__(self, socket: KernelSocket, name: str) -> None:
        self.socket = socket
        self.name = name

    def send(self, msg: dict[str, Any]) -> None:
        self.socket.send(self.name, msg)

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        return await self.socket.get(self.name, timeout)

    def is_alive(self) -> bool:
        return self.socket.lost is None

    def start(self) -> None: ...

    def stop(self) -> None: ...
