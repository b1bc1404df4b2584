"""How a local kernel comes to life, answers, and ends, without fixed sleeps.

jupyter_client waits on clocks: its sockets retry a connection every 100 ms (the client
connects before the kernel listens), ``wait_for_ready`` ends only after 200 ms of iopub
silence, and shutdown polls every 100 ms. Together that is most of a small notebook's
time. Here readiness is the kernel's own reply, and ending a kernel is one SIGKILL to its
process group: a kernel that has run its notebook holds nothing worth a graceful exit.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from traitlets import Type, default

from .forkserver.client import (
    ForkedProcess,
    ForkProvisioner,
    ForkServerPool,
    ReapedProvisioner,
    forkable,
)
from .processes import KERNEL_TAG, end_under_reaper, kill_group, kill_tagged

#: How soon a client socket retries connecting to a kernel that is not listening yet.
RECONNECT_MS = 5
#: How long to wait for the iopub echo of a kernel_info request before asking again
#: (the first request can go out before the iopub subscription is in place).
IOPUB_ECHO_S = 0.5
#: The longest path a Unix socket can have (``sun_path``, less its final NUL).
UNIX_PATH_MAX = 107
#: Where Linux picks the port of a ``bind(("", 0))`` and of an outgoing connection.
EPHEMERAL_PORTS = "/proc/sys/net/ipv4/ip_local_port_range"
#: The channels of a kernel on TCP, as jupyter_client names their ports.
CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


class NoAnswer(RuntimeError):
    """The kernel did not answer kernel_info within ``seconds``: a typed fact for the report."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Kernel didn't respond in {seconds:g} seconds")
        self.seconds = seconds


class ReadyOnReply(AsyncKernelClient):
    """A client that is ready as soon as the kernel has answered on shell and iopub,
    rather than after jupyter_client's 200 ms of iopub silence."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """Ready when a kernel_info request is answered on shell and echoed on iopub."""
        deadline = time.monotonic() + (math.inf if timeout is None else timeout)
        while True:
            msg_id = self.kernel_info()
            reply = await self._reply_to(msg_id, min(1.0, deadline - time.monotonic()))
            if reply is not None:
                self._handle_kernel_info_reply(reply)
                if await self._idle_echo(msg_id, IOPUB_ECHO_S):
                    return
            if not await self._async_is_alive():
                # nbclient's own type: the session then reports what the kernel printed.
                raise DeadKernelError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise NoAnswer(math.inf if timeout is None else timeout)

    async def _reply_to(self, msg_id: str, timeout: float) -> dict[str, Any] | None:
        end = time.monotonic() + max(timeout, 0.0)
        while (left := end - time.monotonic()) > 0:
            try:
                msg: dict[str, Any] = await self.shell_channel.get_msg(timeout=left)
            except Empty:
                return None
            if _parent_id(msg) == msg_id:
                return msg
        return None

    async def _idle_echo(self, msg_id: str, timeout: float) -> bool:
        """Whether iopub carries the kernel's "idle" for ``msg_id`` (so iopub is connected)."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (
                _parent_id(msg) == msg_id
                and msg["msg_type"] == "status"
                and msg["content"].get("execution_state") == "idle"
            ):
                return True
        return False


def _free(ip: str, port: int) -> bool:
    """Whether nothing on this machine holds ``port`` on ``ip`` now."""
    with socket.socket() as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def _parent_id(msg: dict[str, Any]) -> str | None:
    """The id of the request ``msg`` answers; ``None`` for a message that answers none.
    xeus kernels (xpython) send ``"parent_header": null`` there, where ipykernel sends ``{}``."""
    return (msg.get("parent_header") or {}).get("msg_id")


class KernelClient(ReadyOnReply):
    """jupyter_client's client for local kernels: quick to connect, quick to be ready."""

    @default("context")
    def _quick_reconnecting_context(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
        return context


class KernelManager(AsyncKernelManager):
    """jupyter_client's manager, with two rules of ours.

    - Nothing the kernel started outlives the run. jupyter_client kills the kernel's
      process group only while the kernel is alive, so the children of a kernel that
      died (``os._exit``, a segfault) would be orphaned. We remember the group when the
      kernel starts and kill it whenever resources are cleaned up.
    - Ending is immediate: ``kill`` sends SIGKILL to the group and reaps the kernel, with
      no interrupt first and no 100 ms polls.
    - No other process can take a kernel's port before the kernel binds it.
      jupyter_client picks free ports before the kernel starts and the kernel binds them
      later (after a fork server's start, or R's, a second or more under load); any
      process that binds port 0 meanwhile may be given one, and the kernel dies at start
      with "Address already in use". An ipykernel listens on Unix sockets in a private
      folder instead; other kernels (bash, R, xeus) get free TCP ports from below Linux's
      ephemeral range, which port 0 and outgoing connections never draw from.
    - What left the group goes too: every kernel's environment carries a tag of its own
      (``processes.KERNEL_TAG``), inherited by whatever it starts, even in a new session
      or after a double fork; ending the kernel kills every process with that tag (for
      a forked kernel, the fork server does, before it reports the kernel's exit).

    With ``fork_servers`` set, a plain ipykernel is forked from a warm fork server
    instead of started as a new process (``forkserver/client.py``).
    """

    client_factory = Type(klass=AsyncKernelClient, default_value=KernelClient)
    _process_group: int | None = None
    #: This kernel's mark in the environment of everything it starts.
    tag: str = ""
    #: Fork servers to start kernels from; ``None`` starts a new process per kernel.
    fork_servers: ForkServerPool | None = None
    #: What the fork server should have imported for this kernel's notebook (``None``:
    #: preloading is off; see ``forkserver/preload.py``).
    warm: tuple[str, ...] | None = ()
    #: The private folder of the kernel's Unix sockets, removed with the kernel.
    _socket_folder: str | None = None

    async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
        spec = self.kernel_spec
        if spec is not None and sys.platform == "linux":
            self.kernel_id = self.kernel_id or str(uuid.uuid4())
            ipykernel = forkable(spec.argv)
            if ipykernel:
                self._listen_on_unix_sockets()
            if self.transport == "tcp":
                self._listen_below_ephemeral_ports()
            forked = self.fork_servers is not None and ipykernel
            provisioner = ForkProvisioner if forked else ReapedProvisioner
            self.provisioner = provisioner(kernel_id=self.kernel_id, kernel_spec=spec, parent=self)
        self.tag = uuid.uuid4().hex
        kwargs["env"] = {**(kwargs.get("env") or os.environ), KERNEL_TAG: self.tag}
        await super().start_kernel(**kwargs)
        self._process_group = getattr(self.provisioner, "pgid", None)

    def _listen_on_unix_sockets(self) -> None:
        """Have the kernel bind ``<folder>/k-1`` … ``k-5`` (ipykernel's "ipc" transport),
        in a folder only this user can enter; TCP when its path would be too long."""
        folder = tempfile.mkdtemp(prefix="nbh-")
        if len(folder) + len("/k-99") > UNIX_PATH_MAX:
            os.rmdir(folder)
            return
        self._socket_folder = folder
        self.transport = "ipc"
        self.ip = os.path.join(self._socket_folder, "k")

    def _listen_below_ephemeral_ports(self) -> None:
        """Free TCP ports for the kernel, from the band just below Linux's ephemeral range
        (jupyter_client's own choice, from inside it, when the range cannot be read or
        the band has no five free ports in a few hundred tries)."""
        try:
            with open(EPHEMERAL_PORTS, encoding="ascii") as ranges:
                lowest_ephemeral = int(ranges.read().split()[0])
        except (OSError, ValueError, IndexError):
            return
        band = range(max(1024, lowest_ephemeral // 2), lowest_ephemeral)
        if len(band) < 100:
            return
        chosen: list[int] = []
        for port in (random.choice(band) for _ in range(100 * len(CHANNELS))):
            if port not in chosen and _free(self.ip, port):
                chosen.append(port)
            if len(chosen) == len(CHANNELS):
                break
        else:
            return
        self.cache_ports = False  # else the provisioner picks its own
        for channel, port in zip(CHANNELS, chosen, strict=True):
            setattr(self, channel, port)

    def exit_code(self) -> int | None:
        """The kernel process's return code (negative: the signal that killed it), if it ended."""
        process = getattr(self.provisioner, "process", None)
        return None if process is None else process.poll()

    def fork_server_trouble(self) -> str:
        """How the fork server this kernel came from broke ("was killed by SIGKILL"), or ``""``."""
        process = getattr(self.provisioner, "process", None)
        return process.server.health() if isinstance(process, ForkedProcess) else ""

    def kill(self) -> None:
        """SIGKILL the kernel's process group, then reap the kernel (a few ms)."""
        process = getattr(self.provisioner, "process", None)
        if isinstance(process, ForkedProcess) and self._process_group is not None:
            kill_group(self._process_group)
            process.wait(timeout=10)
            if process.cleared_by_server():
                # Its group and its tag are gone: scanning /proc again would find nothing.
                self._process_group, self.tag = None, ""
                return
        if self._process_group is None and process is not None:
            process.kill()
        self._kill_all()
        if process is not None:
            process.wait(timeout=10)

    async def cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        self._kill_all()
        await super().cleanup_resources(restart=restart)
        folder, self._socket_folder = self._socket_folder, None
        if folder is not None and not restart:
            shutil.rmtree(folder, ignore_errors=True)

    def _kill_all(self) -> None:
        """SIGKILL the kernel's group and every process that carries its tag."""
        group, self._process_group = self._process_group, None
        process = getattr(self.provisioner, "process", None)
        # A process-launched kernel's group is led by its reaper, which must outlive it.
        reaper = process if isinstance(self.provisioner, ReapedProvisioner) else None
        if group is not None and isinstance(reaper, subprocess.Popen):
            end_under_reaper(reaper)
        elif group is not None and hasattr(os, "killpg"):
            kill_group(group)
        tag, self.tag = self.tag, ""
        if tag:
            kill_tagged(tag)
