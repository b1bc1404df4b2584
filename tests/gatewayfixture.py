"""Real Jupyter Enterprise Gateway and Kernel Gateway processes on 127.0.0.1.

Each gateway runs from a venv of its own (Enterprise Gateway pins an older jupyter_client
than nbharness's), built by ``nox -s tests`` into ``.nox/gateway-eg`` and
``.nox/gateway-kg`` or named by ``$NBH_GATEWAY_EG`` / ``$NBH_GATEWAY_KG``. Each serves
the venv's own ``python3`` kernel with its local process proxy, plus ``ipykernel7`` (the
tests' interpreter, with ipykernel 7) and two kernelspecs for faults: ``broken`` (a
program that does not exist: the start request fails) and ``sleepy`` (a kernel that
takes 30 s to come up). Gateways run in ``/`` so that a
request's ``path`` can name any folder, as ``KERNEL_WORKING_DIR`` does in a pod.

Without a gateway venv the tests skip, unless ``NBH_REQUIRE_GATEWAY=1`` (set by CI)
turns the skip into a failure. Every process a gateway starts is stopped by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .hubfixture import Secret, free_ports, http, stop_tree, tree_pids

ROOT = Path(__file__).resolve().parents[1]
#: The two gateways: the venv variable, the default venv and how each is started.
KINDS = {
    "eg": ("NBH_GATEWAY_EG", ROOT / ".nox" / "gateway-eg"),
    "kg": ("NBH_GATEWAY_KG", ROOT / ".nox" / "gateway-kg"),
}
#: The user Enterprise Gateway refuses to start kernels for (by default: root).
REFUSED_USER = "mallory"
START_DEADLINE = 60.0
STOP_GRACE = 10.0

# Gateways running in this process, by pid: ``no_orphan_processes`` exempts their trees.
_RUNNING: dict[int, Gateway] = {}


def running_gateway_pids() -> set[int]:
    """Every process of every gateway started in this session that is still running."""
    pids: set[int] = set()
    for gateway in list(_RUNNING.values()):
        pids |= gateway.pids()
    return pids


class GatewayUnavailable(Exception):
    """The gateway's venv is missing, or the gateway did not start."""


def venv_of(kind: str) -> Path:
    variable, default = KINDS[kind]
    return Path(os.environ.get(variable) or default)


def _command(kind: str, venv: Path, port: int) -> list[str]:
    if kind == "eg":
        return [
            str(venv / "bin" / "jupyter-enterprisegateway"),
            "--ip=127.0.0.1",
            f"--port={port}",
            "--port_retries=0",
            "--EnterpriseGatewayApp.list_kernels=True",
            f"--EnterpriseGatewayApp.unauthorized_users={REFUSED_USER}",
        ]
    return [
        str(venv / "bin" / "jupyter-kernelgateway"),
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.port_retries=0",
        "--JupyterWebsocketPersonality.list_kernels=True",
    ]


def _fault_kernelspecs(venv: Path, data: Path) -> None:
    """``broken`` and ``sleepy``: a kernel that cannot start, one that starts slowly; and
    ``ipykernel7``, a kernel of another interpreter."""
    python = str(venv / "bin" / "python")
    specs = {
        # The tests' own interpreter: ipykernel 7, which Enterprise Gateway's venv cannot hold.
        "ipykernel7": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "broken": ["/nonexistent/nbharness-no-such-kernel", "-f", "{connection_file}"],
        "sleepy": [  # one process all along: deleting the kernel ends it
            python,
            "-c",
            "import os, sys, time; time.sleep(30); "
            "os.execv(sys.executable, [sys.executable, '-m', 'ipykernel_launcher', '-f', "
            "sys.argv[1]])",
            "{connection_file}",
        ],
    }
    for name, argv in specs.items():
        folder = data / "kernels" / name
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"argv": argv, "display_name": name, "language": "python"}
        (folder / "kernel.json").write_text(json.dumps(spec))


class Gateway:
    """A running gateway: its URL, its token, its process tree."""

    def __init__(
        self, kind: str, process: subprocess.Popen[bytes], url: str, token: str, log: Path
    ) -> None:
        self.kind = kind
        self.process = process
        self.url = url
        self.token = Secret(token)
        self.log_path = log
        self._stopped = False

    def __repr__(self) -> str:
        return f"<Gateway {self.kind} {self.url} pid={self.process.pid}>"

    @classmethod
    def start(cls, kind: str, root: Path) -> Gateway:
        venv = venv_of(kind)
        port, token = free_ports(1)[0], secrets.token_hex(16)
        command = _command(kind, venv, port)
        if not Path(command[0]).exists():
            raise GatewayUnavailable(
                f"{command[0]} is missing: run `nox -s tests` once (it builds the gateway "
                f"venvs) or set {KINDS[kind][0]}"
            )
        root.mkdir(parents=True, exist_ok=True)
        data = root / "data"
        _fault_kernelspecs(venv, data)
        env = {
            **os.environ,
            "PATH": os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", os.defpath)]),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "JUPYTER_CONFIG_DIR": str(root / "config"),
            "JUPYTER_DATA_DIR": str(data),
            "IPYTHONDIR": str(root / "ipython"),
            "KG_AUTH_TOKEN": token,  # both gateways read it; argv would show it in ps
        }
        env.pop("JUPYTER_PATH", None)
        log_path = root / f"{kind}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd="/",
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        gateway = cls(kind, process, f"http://127.0.0.1:{port}", token, log_path)
        _RUNNING[process.pid] = gateway
        try:
            gateway._wait_ready()
        except BaseException:
            gateway.stop()
            raise
        return gateway

    def _wait_ready(self) -> None:
        give_up = time.monotonic() + START_DEADLINE
        while time.monotonic() < give_up:
            code = self.process.poll()
            if code is not None:
                raise GatewayUnavailable(
                    f"{self.kind} gateway exited with code {code}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                if self.request("GET", "/api/kernelspecs")[0] == 200:
                    return
            time.sleep(0.1)
        raise GatewayUnavailable(f"{self.kind} gateway not ready:\n{self.log_tail()}")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(method, f"{self.url}{path}", body, self.token, timeout=60)

    def kernels(self) -> list[dict[str, Any]]:
        """The kernels the gateway holds now."""
        status, model = self.request("GET", "/api/kernels")
        assert status == 200, f"GET /api/kernels: HTTP {status}"
        return list(model)

    def pids(self) -> set[int]:
        """The gateway and all its current descendants (its kernels)."""
        return tree_pids(self.process.pid)

    def kernel_pids(self) -> set[int]:
        return self.pids() - {self.process.pid}

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the gateway and every process under it, by pid; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        _RUNNING.pop(self.process.pid, None)
        survivors = stop_tree(self.process, STOP_GRACE)
        assert not survivors, f"gateway processes still running after stop: {survivors}"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when NBH_REQUIRE_GATEWAY=1 (CI: gateway tests must not vanish)."""
    if os.environ.get("NBH_REQUIRE_GATEWAY") == "1":
        pytest.fail(f"gateway required (NBH_REQUIRE_GATEWAY=1): {reason}", pytrace=False)
    pytest.skip(reason.splitlines()[0])


@contextlib.contextmanager
def running_gateway(kind: str, root: Path) -> Iterator[Gateway]:
    try:
        gateway: Gateway | None = Gateway.start(kind, root)
    except GatewayUnavailable as error:
        gateway, reason = None, str(error)
    if gateway is None:
        unavailable(reason)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="session", params=["eg", "kg"], ids=["enterprise", "kernel"])
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """An Enterprise Gateway, then a Kernel Gateway: each test runs on both."""
    with running_gateway(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running
