"""Runs notebooks on kernels of a remote Jupyter server: a JupyterHub user's server, a
plain Jupyter server or a kernel gateway.

The notebook file is read here; its code runs there. Each run gets its own kernel,
started with ``POST /api/kernels`` and driven by nbclient over the kernel websocket
(``websocket.py``), and is deleted afterwards whatever happened: a pass, a failure, a
timeout, Ctrl-C or SIGTERM. A kernel that died must be deleted too, since the server
restarts it. Kernels this executor did not start are never touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from jupyter_client.client import KernelClient

from ..config.remote import HUB_TOKEN_ENV, SERVER_TOKEN_ENV, read_token
from ..errors import KernelNotFound, NbHarnessError
from ..jupyter_api.hub import Hub
from ..jupyter_api.rest import RemoteError, Server
from ..jupyter_api.slots import KernelSlots
from ..notebook.io import is_python, stated_language
from . import CellObserver, ClosesOnExit, ExecutorSettings, Run, RunResult
from .remote_kernel import SERVER_GONE, RemoteKernelManager
from .session import KernelSession
from .signals import InterruptOnTerm

#: How long one REST request may take: clean-up after Ctrl-C must never hang for long.
REQUEST_TIMEOUT_S = 10.0


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
        max_kernels_source: str = "--nb-max-kernels",
    ) -> None:
        self.server = server
        #: Where the cap was set, named when a wait for a slot runs out.
        self.max_kernels_source = max_kernels_source
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
            server, cwd = settings.server, settings.remote_cwd
        else:
            server = server_from_environment()
            cwd = settings.remote_cwd or os.environ.get("NBHARNESS_REMOTE_CWD") or None
        cap, source = settings.max_kernels, settings.max_kernels_source
        return cls(server, cwd, cap, settings.spare, source)

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
        session = KernelSession(_with_env_prologue(run), RemoteKernel(self, run), observer)
        session.execute()
        return session

    def kernelspecs(self) -> list[str]:
        """The kernels the server offers; the first request, so a bad token fails here."""
        if self._kernelspecs is None:
            model = self.rest.get("api/kernelspecs") or {}
            self._kernelspecs = sorted(model.get("kernelspecs", {}))
        return self._kernelspecs

    def new_kernel(self, name: str, run: Run | None = None) -> str:
        """A fresh kernel's id for ``run``: the spare when it is of this kind, else a new one."""
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
            kernel_id = self._start(name, run)
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

    def _start(self, name: str, run: Run | None = None) -> str:
        with self._lock:
            self._starting += 1
        try:
            model = self.launch(name, run)
            kernel_id = str(model["id"])
            with self._lock:
                self.owned.add(kernel_id)
        finally:
            with self._started:
                self._starting -= 1
                self._started.notify_all()
        return kernel_id

    def launch(self, name: str, run: Run | None) -> Any:
        """``POST /api/kernels``: the new kernel's model. ``run`` is ``None`` for a spare."""
        body = {"name": name}
        if self.remote_cwd:
            body["path"] = self.remote_cwd
        return self.rest.post("api/kernels", body)

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
    kernel's environment is the server's. That code is Python: another language's kernel
    is left as it is, and ``RemoteKernel.warnings`` says so."""
    if not run.env or not is_python(stated_language(run.notebook.metadata)):
        return run
    setup = f"__import__('os').environ.update({json.dumps(dict(run.env))})\n"
    return dataclasses.replace(run, prologue=setup + run.prologue)


class RemoteKernel:
    """A kernel of the executor's server (a ``KernelBackend``)."""

    def __init__(self, executor: RemoteExecutor, run: Run) -> None:
        self.executor = executor
        self.run = run
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
        self.km = RemoteKernelManager(self.executor, name, run)
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
        notes = []
        language = stated_language(result.notebook.metadata)
        if self.run.env and not is_python(language):
            notes.append(f"--nb-env is not applied on a remote {language} kernel")
        km = self._remote()
        if km.socket is not None and km.socket.rate_limited:
            notes.append(
                f"{self.executor.server.label} dropped output over its iopub rate limit; raise "
                "ServerApp.iopub_data_rate_limit / iopub_msg_rate_limit on the server to keep it"
            )
        return notes

    async def stop(self, kc: KernelClient | None) -> None:
        km = self._remote()
        if km.socket is not None:
            await km.socket.close()
        km.release()
