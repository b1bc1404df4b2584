"""A kernel on a Jupyter server as nbclient sees it: its manager (started, interrupted
and deleted over REST) and its client (channels over the websocket, ``websocket.py``).

``remote.py``'s executor makes one per run; nbclient drives it as it would a local one.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from jupyter_client.manager import AsyncKernelManager
from tornado.simple_httpclient import HTTPTimeoutError

from ..errors import KernelStartFailed
from ..jupyter_api.rest import RemoteError, Rest
from ..jupyter_api.slots import KernelSlots, NoFreeSlot
from .launch import ReadyOnReply
from .websocket import KernelSocket

if TYPE_CHECKING:
    from . import Run
    from .remote import RemoteExecutor

#: Statuses that mean the server itself is gone (stopped, culled, being restarted).
SERVER_GONE = {302, 303, 424}
#: How long to wait, after a websocket dropped, for the server to notice before reconnecting.
RECONNECT_WAIT_S = 10.0
#: How long the kernel's websocket may take to open.
CONNECT_TIMEOUT_S = 30.0


class RemoteKernelManager(AsyncKernelManager):
    """A kernel on a Jupyter server, started and deleted over its REST API.

    It plugs into nbclient where a local kernel manager would; everything nbclient asks
    of a kernel goes over REST (start, interrupt, delete) or the websocket (messages).
    """

    def __init__(
        self,
        executor: RemoteExecutor,
        kernel_name: str,
        run: Run,
    ) -> None:
        super().__init__(kernel_name=kernel_name)
        self.executor = executor
        self.server = executor.server
        self.rest: Rest = executor.rest
        self.remote_id: str | None = None
        self.socket: KernelSocket | None = None
        #: The kernel slot held while the kernel lives, when kernels per server are capped.
        self.slot: int | None = None
        self.run = run
        self.startup_timeout = run.startup_timeout
        self.startup_timeout_source = run.startup_timeout_source

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
            self.remote_id = await asyncio.to_thread(
                self.executor.new_kernel, self.kernel_name, self.run
            )
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
                f"({self.executor.max_kernels_source} {slots.count}, {self.startup_timeout_source})"
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
        """Open the websocket: a server answers it once the kernel is up, so a kernel
        slow to start (a gateway's pod, say) runs out the start-up timeout here."""
        km = self.parent
        assert isinstance(km, RemoteKernelManager)
        try:
            await self.socket.connect(timeout=min(CONNECT_TIMEOUT_S, km.startup_timeout))
        except HTTPTimeoutError:
            raise KernelStartFailed(
                f"kernel {km.kernel_name!r} did not start within {km.startup_timeout:g} s "
                f"({km.startup_timeout_source}): {km.server.label} did not open its websocket"
            ) from None

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
