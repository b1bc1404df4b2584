"""Kernels forked from a warm fork server: a fresh ipykernel in tens of milliseconds.

A new ``python -m ipykernel_launcher`` spends ~250 ms of CPU importing ipykernel. The
fork server (``server.py``) imports a fresh kernel's modules once; each kernel is then a
``fork()`` of it. ``ForkProvisioner`` plugs that into jupyter_client's provisioner
interface (set on the kernel manager by ``launch.KernelManager``, not registered as an
entry point), so nbclient drives forked kernels unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from ..processes import KERNEL_TAG, exit_description, log_tail, state

SERVER_SCRIPT = Path(__file__).with_name("server.py")
REAPER = Path(__file__).with_name("reaper.py")

#: How long a fork server may take to import a kernel's modules before we give up on it.
FORK_SERVER_START_TIMEOUT = 60.0
#: How long a fork (a few ms) may take before the fork server counts as unresponsive.
SPAWN_TIMEOUT = 10.0
#: How often a wait on the fork server looks whether it died or was stopped.
HEALTH_CHECK_S = 0.1


class ForkServerError(RuntimeError):
    """The fork server could not start or answer: ``state`` says why, ``waited_for`` what
    was asked of it."""

    def __init__(self, waited_for: str, state: str) -> None:
        super().__init__(waited_for, state)  # pickled (xdist) from these, as it was built
        self.waited_for = waited_for
        self.state = state

    def __str__(self) -> str:
        return f"the fork server {self.state} while nbharness waited for {self.waited_for}"


class ForkServer:
    """The parent's end of one fork server: an interpreter, the modules it imported for its
    kernels (``warm``), and the environment it imported them in."""

    def __init__(
        self, python: str, warm: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> None:
        self.warm = warm
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # What the fork server itself prints (import-time chatter, a crash) is kept for errors.
        self.log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.process = subprocess.Popen(
            [python, str(SERVER_SCRIPT), str(theirs.fileno()), json.dumps(list(warm))],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            # Out of pytest's process group: when the group is killed (a cancelled CI job),
            # the fork server outlives it long enough to end every kernel it forked.
            start_new_session=True,
        )
        theirs.close()
        self.channel = ours
        self.lock = threading.Lock()
        self.exits: dict[int, int] = {}
        #: How the fork server broke ("was killed by SIGKILL", "was stopped"), once it did.
        self.broken = ""
        self.ready = self._receive("ready", FORK_SERVER_START_TIMEOUT, "its start")

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str, stdio: list[int]) -> int:
        request = json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode()
        with self.lock:
            try:
                socket.send_fds(self.channel, [request], stdio)
            except OSError:
                raise self._failure("a new kernel") from None
            return self._receive("pid", SPAWN_TIMEOUT, "a new kernel")

    def exit_code(self, pid: int, timeout: float = 0.0) -> int | None:
        """The kernel's exit code once the fork server has reaped it, waiting up to ``timeout``;
        ``None`` if it has not, or the fork server broke and cannot tell."""
        deadline = time.monotonic() + timeout
        with self.lock, contextlib.suppress(ForkServerError):  # broken: it cannot tell
            while pid not in self.exits:
                left = deadline - time.monotonic()
                message = self._read_one(min(max(left, 0.0), HEALTH_CHECK_S), "a kernel's exit")
                if message is None and left <= 0:
                    break
        return self.exits.get(pid)

    def health(self) -> str:
        """How the fork server broke, or ``""`` while it is alive and running."""
        if not self.broken:
            code = self.process.poll()
            if code is not None:
                how = exit_description(code) or "exit code 0"
                self.broken = f"was {how}" if code < 0 else f"exited with {how}"
            elif state(self.process.pid) in ("T", "t"):
                self.broken = "was stopped (SIGSTOP)"
        return self.broken

    def close(self) -> None:
        """End the fork server: it kills whatever kernels it still has, then exits. A broken
        one is killed outright (SIGKILL ends a stopped process too)."""
        self.channel.close()
        if self.health():
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def _receive(self, key: str, timeout: float, waited_for: str) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = deadline - time.monotonic()
            message = self._read_one(min(left, HEALTH_CHECK_S), waited_for)
            if message is not None and key in message:
                return int(message[key])
        self.broken = self.broken or f"did not answer within {timeout:g} s"
        raise self._failure(waited_for)

    def _failure(self, waited_for: str) -> ForkServerError:
        state = self.health() or "closed its socket"
        said = log_tail(self.log)
        return ForkServerError(waited_for, f"{state}; it said: {said}" if said else state)

    def _read_one(self, timeout: float, waited_for: str) -> dict[str, Any] | None:
        """One message from the fork server (exit notices are filed away), or ``None``; raise
        ``ForkServerError`` as soon as it is dead or stopped."""
        readable, _, _ = select.select([self.channel], [], [], timeout)
        if not readable:
            if self.health():
                raise self._failure(waited_for)
            return None
        data = self.channel.recv(1 << 16)
        if not data:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1)  # the socket closes as it dies: say how it died
            self.broken = self.health() or "closed its socket"
            raise self._failure(waited_for)
        message: dict[str, Any] = json.loads(data)
        if "exit" in message:
            self.exits[int(message["exit"])] = int(message["code"])
        return message


class ForkServerPool:
    """The fork servers of one executor, started on first use: per interpreter, one for
    each set of warm modules its notebooks asked for (a notebook gets one whose set holds
    what it imports)."""

    def __init__(self) -> None:
        self._servers: dict[tuple[str, tuple[str, ...]], ForkServer] = {}
        self._broken: set[str] = set()
        self._lock = threading.Lock()

    def get(
        self, python: str, warm: tuple[str, ...] | None = (), env: dict[str, str] | None = None
    ) -> ForkServer | None:
        """A fork server of the interpreter that imported ``warm`` (``None``: nothing beyond
        a fresh kernel's modules), or ``None`` if it cannot run one (then kernels start as
        processes: slower, never wrong). A new one imports ``env`` as the kernel would; one
        that a notebook killed or stopped is replaced by a new one."""
        with self._lock:
            if python in self._broken:
                return None
            key = self._fitting(python, warm)
            server = self._servers.get(key) if key else None
            if server is not None and server.health():
                del self._servers[key]  # type: ignore[arg-type]
                server.close()
                server = None
            if server is None:
                key = (python, self._grown(python, warm))
                try:
                    server = self._servers[key] = ForkServer(python, key[1], _server_env(env))
                except (OSError, ForkServerError):
                    self._broken.add(python)
                    return None
            return server

    def _fitting(
        self, python: str, warm: tuple[str, ...] | None
    ) -> tuple[str, tuple[str, ...]] | None:
        """The key of the running server with the fewest warm modules that has ``warm``."""
        fits = [
            key
            for key in self._servers
            if key[0] == python and (set(key[1]) >= set(warm) if warm is not None else not key[1])
        ]
        return min(fits, key=lambda key: len(key[1]), default=None)

    def _grown(self, python: str, warm: tuple[str, ...] | None) -> tuple[str, ...]:
        """A new server's warm modules: ``warm``, and what earlier notebooks asked for, so
        that a session of varied notebooks settles on one fork server."""
        if warm is None:
            return ()
        earlier = {name for key in self._servers if key[0] == python for name in key[1]}
        return tuple(sorted(earlier | set(warm)))

    def pids(self) -> set[int]:
        """The fork servers' process ids."""
        return {server.process.pid for server in self._servers.values()}

    def close(self) -> None:
        with self._lock:
            fork_servers, self._servers = list(self._servers.values()), {}
        for server in fork_servers:
            server.close()


def _server_env(env: dict[str, str] | None) -> dict[str, str] | None:
    """The environment a fork server starts in: its first kernel's, less what is that
    kernel's own (its tag, its parent's pid)."""
    if env is None:
        return None
    return {k: v for k, v in env.items() if k != KERNEL_TAG and not k.startswith("JPY_")}


class ForkedProcess:
    """Enough of ``subprocess.Popen`` for jupyter_client, for a kernel the fork server forked."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            code = self.server.exit_code(self.pid)
            self.returncode = code if code is not None else self._orphan_code()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        limit = 1e9 if timeout is None else timeout
        code = self.server.exit_code(self.pid, timeout=limit)
        deadline = time.monotonic() + min(limit, SPAWN_TIMEOUT)
        while code is None and self.server.broken and time.monotonic() < deadline:
            code = self._orphan_code()
            time.sleep(0.01)
        if code is None:
            raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
        self.returncode = code
        return code

    def cleared_by_server(self) -> bool:
        """Whether the fork server reaped this kernel, which it reports only after killing
        the kernel's process group and every process carrying the kernel's tag."""
        return self.pid in self.server.exits

    def _orphan_code(self) -> int | None:
        """With its fork server broken, nobody reports the kernel's exit: a kernel that is
        gone (or a zombie under a stopped server) was killed, by us or with its server."""
        if self.server.broken and state(self.pid) in ("", "Z"):
            return -signal.SIGKILL
        return None

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    stdin = stdout = stderr = None


def forkable(argv: list[str]) -> bool:
    """Whether a kernelspec's command is a plain ipykernel the fork server can stand in for."""
    return len(argv) >= 3 and argv[1:3] == ["-m", "ipykernel_launcher"]


class ReapedProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, with the kernel started under ``reaper.py``,
    which ends what the kernel leaves behind even when pytest is killed outright."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        return await super().launch_kernel([sys.executable, str(REAPER), *cmd], **kwargs)


class ForkProvisioner(ReapedProvisioner):
    """jupyter_client's local provisioner, launching by fork from the executor's fork server
    (or, when there is none, as a process under ``reaper.py``)."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        pool: ForkServerPool | None = getattr(self.parent, "fork_servers", None)
        warm: tuple[str, ...] | None = getattr(self.parent, "warm", ())
        env = dict(kwargs.get("env") or os.environ)
        server = pool.get(cmd[0], warm, env) if pool is not None and forkable(cmd) else None
        if server is None:
            return await super().launch_kernel(cmd, **kwargs)
        env["JPY_PARENT_PID"] = str(os.getpid())
        cwd = str(kwargs.get("cwd") or Path.cwd())
        with open(os.devnull, "rb") as stdin:
            stdio = [stdin.fileno(), _fd(kwargs.get("stdout"), 1), _fd(kwargs.get("stderr"), 2)]
            try:
                pid = server.spawn(cmd, env, cwd, stdio)
            except ForkServerError:  # broken under us: this kernel starts as a process
                return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedProcess(server, pid)  # type: ignore[assignment]  # Popen's API
        self.pid = self.pgid = pid  # the kernel leads its own session
        self.cwd = cwd
        return self.connection_info


def _fd(stream: IO[Any] | int | None, default: int) -> int:
    if stream is None:
        return default
    return stream if isinstance(stream, int) else stream.fileno()
