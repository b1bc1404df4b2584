"""Kernels forked from a warm zygote: a fresh ipykernel in tens of milliseconds.

A new ``python -m ipykernel_launcher`` spends ~250 ms of CPU importing ipykernel. The
zygote (``zygote.py``) imports a fresh kernel's modules once; each kernel is then a
``fork()`` of it. ``ForkProvisioner`` plugs that into jupyter_client's provisioner
interface (entry point ``nbharness-fork`` in ``jupyter_client.kernel_provisioners``),
so nbclient and papermill drive forked kernels unchanged.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from ..processes import log_tail

ZYGOTE = Path(__file__).with_name("server.py")

#: How long a zygote may take to import a kernel's modules before we give up on it.
ZYGOTE_START_TIMEOUT = 60.0


class ZygoteError(RuntimeError):
    """The fork server could not start or answer."""


class Zygote:
    """The parent's end of one fork server (one per Python interpreter)."""

    def __init__(self, python: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # What the zygote itself prints (import-time chatter, a crash) is kept for errors.
        self.log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.process = subprocess.Popen(
            [python, str(ZYGOTE), str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        theirs.close()
        self.channel = ours
        self.lock = threading.Lock()
        self.exits: dict[int, int] = {}
        self.ready = self._receive("ready", ZYGOTE_START_TIMEOUT)

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str, stdio: list[int]) -> int:
        request = json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode()
        with self.lock:
            socket.send_fds(self.channel, [request], stdio)
            return self._receive("pid", ZYGOTE_START_TIMEOUT)

    def exit_code(self, pid: int, timeout: float = 0.0) -> int | None:
        """The kernel's exit code once the zygote has reaped it, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while pid not in self.exits:
                left = deadline - time.monotonic()
                if not self._read_one(max(left, 0.0)):
                    break
            return self.exits.get(pid)

    def close(self) -> None:
        """End the zygote: it kills whatever kernels it still has, then exits."""
        self.channel.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def _receive(self, key: str, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            message = self._read_one(left) if left > 0 else None
            if message is None:
                raise ZygoteError(
                    f"the fork server did not answer within {timeout:g} s{self._said()}"
                )
            if key in message:
                return int(message[key])

    def _said(self) -> str:
        said = log_tail(self.log)
        return f"; it said: {said}" if said else ""

    def _read_one(self, timeout: float) -> dict[str, Any] | None:
        """One message from the zygote (exit notices are filed away), or ``None``."""
        readable, _, _ = select.select([self.channel], [], [], timeout)
        if not readable:
            return None
        data = self.channel.recv(1 << 16)
        if not data:
            raise ZygoteError(f"the fork server exited{self._said()}")
        message: dict[str, Any] = json.loads(data)
        if "exit" in message:
            self.exits[int(message["exit"])] = int(message["code"])
        return message


class ZygotePool:
    """The zygotes of one executor, one per interpreter, started on first use."""

    def __init__(self) -> None:
        self._zygotes: dict[str, Zygote] = {}
        self._broken: set[str] = set()
        self._lock = threading.Lock()

    def get(self, python: str) -> Zygote | None:
        """The interpreter's zygote, or ``None`` if it cannot run one (then kernels start
        as processes: slower, never wrong)."""
        with self._lock:
            if python in self._broken:
                return None
            if python not in self._zygotes:
                try:
                    self._zygotes[python] = Zygote(python)
                except (OSError, ZygoteError):
                    self._broken.add(python)
                    return None
            return self._zygotes[python]

    def pids(self) -> set[int]:
        """The fork servers' process ids."""
        return {zygote.process.pid for zygote in self._zygotes.values()}

    def close(self) -> None:
        with self._lock:
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            zygote.close()


class ForkedProcess:
    """Enough of ``subprocess.Popen`` for jupyter_client, for a kernel the zygote forked."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self.zygote.exit_code(self.pid, timeout=1e9 if timeout is None else timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
        self.returncode = code
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    stdin = stdout = stderr = None


def forkable(argv: list[str]) -> bool:
    """Whether a kernelspec's command is a plain ipykernel the zygote can stand in for."""
    return len(argv) >= 3 and argv[1:3] == ["-m", "ipykernel_launcher"]


class ForkProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, launching by fork from the executor's zygote."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        pool: ZygotePool | None = getattr(self.parent, "zygotes", None)
        zygote = pool.get(cmd[0]) if pool is not None and forkable(cmd) else None
        if zygote is None:
            return await super().launch_kernel(cmd, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        env["JPY_PARENT_PID"] = str(os.getpid())
        cwd = str(kwargs.get("cwd") or Path.cwd())
        with open(os.devnull, "rb") as stdin:
            stdio = [stdin.fileno(), _fd(kwargs.get("stdout"), 1), _fd(kwargs.get("stderr"), 2)]
            pid = zygote.spawn(cmd, env, cwd, stdio)
        self.process = ForkedProcess(zygote, pid)  # type: ignore[assignment]  # Popen's API
        self.pid = self.pgid = pid  # the kernel leads its own session
        self.cwd = cwd
        return self.connection_info


def _fd(stream: IO[Any] | int | None, default: int) -> int:
    if stream is None:
        return default
    return stream if isinstance(stream, int) else stream.fileno()
