"""A real JupyterHub on 127.0.0.1 for tests of remote execution.

The hub runs as it would on a science platform (proxy, Hub API, spawned single-user servers,
their kernels), only with test settings: a dummy authenticator, local-process spawner, state
in a temporary folder and every socket on loopback. Tests talk to it through ``Hub``.

Fixtures: ``jupyterhub`` (the session's hub) and ``hub_user`` (alice, her token, her running
default server). Without jupyterhub or a proxy binary they skip, unless ``NBH_REQUIRE_HUB=1``
(set by CI) turns the skip into a failure so that the hub tests cannot vanish silently.

Only the standard library and pytest are imported at module level; psutil and jupyterhub are
imported when a hub starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCAL_CHP = ROOT / ".nox" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
SERVICE = "nbharness-tests"
#: What the test hub's servers say they run (KubeSpawner sets JUPYTER_IMAGE_SPEC).
TEST_IMAGE = "registry.example.org/nbharness-test:1"
# What the harness service may do: users (create, read, list), their servers (start, stop,
# read, named ones too), talk to those servers (kernels API) and mint user tokens.
SERVICE_SCOPES = [
    "admin:users",
    "admin:servers",
    "access:servers",
    "tokens",
    "list:users",
    "read:users",
    "read:servers",
    "servers",
]
START_DEADLINE = 60.0
SPAWN_DEADLINE = 90.0
STOP_GRACE = 15.0

# Hubs running in this process, by hub pid: ``no_orphan_processes`` exempts their trees.
_RUNNING: dict[int, Hub] = {}


class Secret(str):
    """A token: an ordinary string whose repr hides it (reprs, showlocals, assertions)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<secret>'"


class HubUnavailable(Exception):
    """The hub cannot run here (missing package or proxy) or did not start."""


def running_hub_pids() -> set[int]:
    """Every process of every hub started in this session that is still running."""
    pids: set[int] = set()
    for hub in list(_RUNNING.values()):
        pids |= hub.pids()
    return pids


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Return 3xx as they are: a redirect to the hub means "no such server", not success."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30.0
) -> tuple[int, Any]:
    """One JSON request with header auth; returns (status, parsed JSON or None), never raises
    on an HTTP error status. Redirects are returned, not followed."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


#: Where the test servers' ports come from: below the band local kernels on TCP use, and
#: below Linux's ephemeral range, so that no other process's bind to port 0 (a kernel in
#: a hub, another xdist worker's server) can be given one before the server binds it.
SERVER_PORTS = range(8192, 16384)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports nobody holds now (all held open while choosing)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            port = secrets.choice(SERVER_PORTS)
            with contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", port))
                ports.append(port)
        return ports


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (TIME_WAIT leftovers don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def find_proxy() -> str | None:
    """The configurable-http-proxy to run: $NBH_CHP, then the repo's npm copy, then PATH."""
    named = os.environ.get("NBH_CHP")
    if named:
        if not os.access(named, os.X_OK):
            raise HubUnavailable(f"NBH_CHP={named} is not an executable file")
        return named
    if LOCAL_CHP.exists():
        return str(LOCAL_CHP)
    return shutil.which("configurable-http-proxy")


def _jupyter_dirs(root: Path) -> dict[str, str]:
    """Jupyter's and IPython's state folders under ``root``, for the hub and its servers."""
    names = ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR")
    return {name: str(root / "jupyter" / name.lower()) for name in names}


def _quote(name: str) -> str:
    """A user or server name as one URL path segment."""
    return urllib.parse.quote(name, safe="")


class Hub:
    """A running JupyterHub: its URL, its admin service token, and its process tree."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        url: str,
        ports: tuple[int, int, int],
        service_token: str,
        root: Path,
        log: IO[bytes],
    ) -> None:
        self.process = process
        self.url = url
        #: public proxy, hub API, proxy API.
        self.ports = ports
        self.root = root
        self.log_path = root / "hub.log"
        self._service_token = Secret(service_token)
        self._log = log
        self._stopped = False

    def __repr__(self) -> str:
        return f"<Hub {self.url} pid={self.process.pid}>"

    # -- starting and stopping ---------------------------------------------------------

    @classmethod
    def start(cls, root: Path, deadline: float = START_DEADLINE) -> Hub:
        """Write the config into ``root``, start the hub, wait for its API through the proxy.

        Raises ``HubUnavailable`` if it cannot run or start here: the first line of its
        message says why, the hub's log tail follows.
        """
        if importlib.util.find_spec("jupyterhub") is None:
            raise HubUnavailable("jupyterhub is not installed (pip install -e '.[test]')")
        singleuser = BIN / "jupyterhub-singleuser"
        if not singleuser.exists():
            raise HubUnavailable(f"{singleuser} is missing (pip install jupyterhub)")
        proxy = find_proxy()
        if proxy is None:
            raise HubUnavailable(
                "no configurable-http-proxy: set NBH_CHP or run "
                "`npm install --prefix .nox/chp configurable-http-proxy`"
            )
        root.mkdir(parents=True, exist_ok=True)
        public, hub_api, proxy_api = free_ports(3)
        service_token = secrets.token_hex(32)
        env = cls._environment(root)
        env["NBH_HUB_SERVICE_TOKEN"] = service_token
        env["CONFIGPROXY_AUTH_TOKEN"] = secrets.token_hex(32)
        config = root / "jupyterhub_config.py"
        config.write_text(cls._config(root, proxy, (public, hub_api, proxy_api)))
        secret_file = root / "cookie_secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        log = (root / "hub.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{public}"
        hub = cls(process, url, (public, hub_api, proxy_api), service_token, root, log)
        _RUNNING[process.pid] = hub
        try:
            hub._wait_ready(deadline)
        except BaseException:
            hub.stop()
            raise
        return hub

    @staticmethod
    def _environment(root: Path) -> dict[str, str]:
        """The hub's environment: Jupyter state under ``root``, this venv first on PATH.

        The spawner passes PATH on (env_keep), so user servers and their kernels (the
        ``python3`` kernelspec runs ``python``) use this venv too.
        """
        env = {**os.environ, **_jupyter_dirs(root)}
        env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", os.defpath)])
        return env

    @staticmethod
    def _config(root: Path, proxy: str, ports: tuple[int, int, int]) -> str:
        """jupyterhub_config.py: loopback only, state in ``root``, secrets from the env."""
        public, hub_api, proxy_api = ports
        args = ["--allow-root"] if os.geteuid() == 0 else []
        settings = {
            "JupyterHub.ip": "127.0.0.1",
            "JupyterHub.port": public,
            "JupyterHub.hub_ip": "127.0.0.1",
            "JupyterHub.hub_port": hub_api,
            "JupyterHub.db_url": f"sqlite:///{root / 'jupyterhub.sqlite'}",
            "JupyterHub.cookie_secret_file": str(root / "cookie_secret"),
            "JupyterHub.pid_file": str(root / "jupyterhub.pid"),
            "JupyterHub.cleanup_servers": True,
            "JupyterHub.cleanup_proxy": True,
            "JupyterHub.allow_named_servers": True,
            "JupyterHub.named_server_limit_per_user": 5,
            "JupyterHub.authenticator_class": "dummy",
            "DummyAuthenticator.allow_all": True,
            "JupyterHub.spawner_class": "simple",
            "SimpleLocalProcessSpawner.home_dir_template": str(root / "home" / "{username}"),
            "Spawner.cmd": [str(BIN / "jupyterhub-singleuser")],
            "Spawner.args": args,
            "Spawner.ip": "127.0.0.1",
            "Spawner.start_timeout": 60,
            "Spawner.http_timeout": 60,
            "Spawner.env_keep": ["PATH", "PYTHONPATH", "LANG", "LC_ALL"],
            # As KubeSpawner does on a real platform: the image, for reports to name.
            "Spawner.environment": {**_jupyter_dirs(root), "JUPYTER_IMAGE_SPEC": TEST_IMAGE},
            "ConfigurableHTTPProxy.command": [proxy],
            "ConfigurableHTTPProxy.should_start": True,
            "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{proxy_api}",
            "ConfigurableHTTPProxy.pid_file": str(root / "proxy.pid"),
        }
        lines = [
            "# Written by tests/hubfixture.py: a throwaway test hub on loopback.",
            "import os",
            "c = get_config()  # noqa: F821",
        ]
        lines += [f"c.{key} = {value!r}" for key, value in settings.items()]
        lines += [
            "def _fail_on_request(spawner):  # a spawn failure on cue: user_options fail=...",
            "    if spawner.user_options.get('fail'):",
            "        raise RuntimeError(spawner.user_options['fail'])",
            "c.Spawner.pre_spawn_hook = _fail_on_request",
        ]
        lines += [
            "c.JupyterHub.services = [",
            f"    {{'name': {SERVICE!r}, 'api_token': os.environ['NBH_HUB_SERVICE_TOKEN']}}",
            "]",
            "c.JupyterHub.load_roles = [",
            f"    {{'name': 'nbharness-tests', 'scopes': {SERVICE_SCOPES!r},"
            f" 'services': [{SERVICE!r}]}}",
            "]",
        ]
        return "\n".join(lines) + "\n"

    def _wait_ready(self, deadline: float) -> None:
        """Poll ``GET /hub/api/`` through the proxy until 200; fail fast if the hub exits."""
        give_up = time.monotonic() + deadline
        while time.monotonic() < give_up:
            code = self.process.poll()
            if code is not None:
                tail = self.log_tail()
                raise HubUnavailable(
                    f"jupyterhub exited with code {code} while starting: {_first_error(tail)}"
                    f"\n{tail}"
                )
            with contextlib.suppress(OSError):
                status, _ = http("GET", f"{self.url}/hub/api/", timeout=5)
                if status == 200:
                    return
            time.sleep(0.1)
        raise HubUnavailable(f"jupyterhub not ready after {deadline:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the hub and everything under it, by pid, and check that nothing survives.

        Stopping again does nothing.

        The proxy and the user servers run in sessions of their own, so signalling the hub's
        process group would not reach them: the hub stops them on SIGTERM, and whatever was
        recorded under it and still runs afterwards is terminated, then killed, by pid.
        """
        if self._stopped:
            return
        self._stopped = True
        _RUNNING.pop(self.process.pid, None)
        survivors = stop_tree(self.process, STOP_GRACE)
        self._log.close()
        assert not survivors, f"hub processes still running after stop: {survivors}"

    # -- inspecting ----------------------------------------------------------------------

    def pids(self) -> set[int]:
        """The hub and all its current descendants (proxy, user servers, their kernels)."""
        return tree_pids(self.process.pid)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the hub's log (the hub's, the proxy's and the servers' output)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- Hub REST API --------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """``{url}/hub/api{path}`` with the given token, or the admin service token."""
        return http(method, f"{self.url}/hub/api{path}", body, token or self._service_token)

    def add_user(self, name: str) -> None:
        """Create the user unless it exists."""
        status, _ = self.request("GET", f"/users/{_quote(name)}")
        if status == 200:
            return
        status, _ = self.request("POST", f"/users/{_quote(name)}")
        if status not in (201, 409):
            raise AssertionError(f"creating user {name!r}: HTTP {status}\n{self.log_tail()}")

    def token_for(self, user: str, scopes: list[str], expires_in: int = 3600) -> str:
        """A new API token of ``user`` limited to ``scopes`` (minted by the admin service)."""
        body = {"scopes": scopes, "expires_in": expires_in, "note": "nbharness tests"}
        status, reply = self.request("POST", f"/users/{_quote(user)}/tokens", body)
        if status != 201:
            message = reply.get("message") if isinstance(reply, dict) else reply
            raise AssertionError(f"token for {user!r} {scopes}: HTTP {status} {message}")
        return Secret(reply["token"])

    def servers(self, user: str) -> dict[str, Any]:
        """The user's active (running or pending) servers, by name ("" is the default)."""
        status, model = self.request("GET", f"/users/{_quote(user)}")
        if status == 404:
            return {}
        if status != 200:
            raise AssertionError(f"GET user {user!r}: HTTP {status}")
        return dict(model.get("servers") or {})

    def _server_path(self, user: str, server_name: str) -> str:
        if server_name:
            return f"/users/{_quote(user)}/servers/{_quote(server_name)}"
        return f"/users/{_quote(user)}/server"

    def start_server(self, user: str, server_name: str = "") -> str:
        """Start (or find running) a server of ``user`` and return its URL once it is ready.

        ``http://127.0.0.1:PORT/user/NAME/`` or ``.../user/NAME/SERVER/``.
        """
        status, reply = self.request("POST", self._server_path(user, server_name))
        if status not in (201, 202, 400):  # 400: already running or pending
            message = reply.get("message") if isinstance(reply, dict) else reply
            raise AssertionError(f"starting {user}/{server_name}: HTTP {status} {message}")
        give_up = time.monotonic() + SPAWN_DEADLINE
        while time.monotonic() < give_up:
            server = self.servers(user).get(server_name)
            if server is None:
                raise AssertionError(
                    f"server {user}/{server_name} gone while starting:\n{self.log_tail()}"
                )
            if server.get("ready"):
                return f"{self.url}{server['url']}"
            time.sleep(0.1)
        raise AssertionError(f"server {user}/{server_name} not ready:\n{self.log_tail()}")

    def stop_server(self, user: str, server_name: str = "") -> None:
        """Stop a server and wait until the hub lists it no more (named ones are removed)."""
        body = {"remove": True} if server_name else None
        path = self._server_path(user, server_name)
        give_up = time.monotonic() + SPAWN_DEADLINE
        while True:
            status, reply = self.request("DELETE", path, body)
            # 400: a spawn or a stop is pending; ask again until the hub takes it.
            if status != 400 or time.monotonic() > give_up:
                break
            time.sleep(0.2)
        if status not in (202, 204, 404):
            message = reply.get("message") if isinstance(reply, dict) else reply
            raise AssertionError(f"stopping {user}/{server_name}: HTTP {status} {message}")
        while time.monotonic() < give_up:
            if server_name not in self.servers(user):
                return
            time.sleep(0.1)
        raise AssertionError(f"server {user}/{server_name} still listed:\n{self.log_tail()}")

    def kernels(self, user: str, server_name: str = "") -> list[dict[str, Any]]:
        """The kernels running on a server of ``user`` ([] when it is not running)."""
        server = self.servers(user).get(server_name)
        if not server or not server.get("ready"):
            return []
        url = f"{self.url}{server['url']}api/kernels"
        status, reply = http("GET", url, token=self._service_token)
        if status != 200:
            raise AssertionError(f"kernels of {user}/{server_name}: HTTP {status}")
        return list(reply)


def _first_error(log: str) -> str:
    """The first error or critical line of a JupyterHub log (else its last line)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("[E ", "[C "))]
    return (errors or lines or ["(empty log)"])[0]


def tree_pids(pid: int) -> set[int]:
    """A process and all its current descendants (none once it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return {root.pid} | {p.pid for p in root.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def stop_tree(process: subprocess.Popen[bytes], grace: float) -> list[int]:
    """Stop a server started here and everything under it, by pid: SIGTERM and ``grace``
    seconds to stop its children itself, then terminate and kill whatever was recorded
    under it. The pids that survive all that.

    Its children may run in sessions of their own, so signalling its process group would
    not reach them.
    """
    import psutil

    try:
        recorded = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        recorded = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    alive = [p for p in recorded if _alive(p)]
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    _, alive = psutil.wait_procs(alive, timeout=5)
    return [p.pid for p in alive if _alive(p)]


def _alive(proc: Any) -> bool:
    """A psutil.Process still runs (a zombie has exited; is_running also guards pid reuse)."""
    import psutil

    try:
        return bool(proc.is_running()) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclasses.dataclass(frozen=True)
class HubUser:
    """A hub user with a running default server and a scoped token of its own."""

    name: str
    token: str = dataclasses.field(repr=False)
    server_url: str
    hub: Hub


# What alice's token needs, no more (each checked against JupyterHub 6.1.1):
# - access:servers!user=alice: talk to her servers (REST, kernels, websockets); without it
#   GET {server}api/status is 403;
# - servers!user=alice: start and stop her default and named servers, see them in
#   GET /hub/api/users/alice (the ``servers`` field, with ``ready`` and ``url``) and follow
#   the spawn progress stream; it holds read:servers, start:servers and delete:servers, and
#   start:servers + delete:servers alone start and stop but cannot watch (no ``servers``
#   field, progress 403).
# GET /hub/api/users/alice answers 200 to any of her tokens; read:users!user=alice would only
# add ``created``, ``last_activity``, ``pending``, ``roles`` and ``server`` to it: not needed.
USER_SCOPES = ["access:servers!user={name}", "servers!user={name}"]


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when NBH_REQUIRE_HUB=1 (CI: hub tests must not vanish silently)."""
    reason = reason.strip()
    if os.environ.get("NBH_REQUIRE_HUB") == "1":
        pytest.fail(f"JupyterHub required (NBH_REQUIRE_HUB=1): {reason}", pytrace=False)
    pytest.skip(reason.splitlines()[0])


@contextlib.contextmanager
def running_hub(root: Path) -> Iterator[Hub]:
    """A hub for the duration of the block; skips (or fails) if it cannot run here."""
    try:
        hub: Hub | None = Hub.start(root)
    except HubUnavailable as error:
        hub, reason = None, str(error)
    if hub is None:
        unavailable(reason)  # outside the except: no "during handling..." chain in reports
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="session")
def jupyterhub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """This session's (this xdist worker's) JupyterHub, stopped at the end of the session."""
    with running_hub(tmp_path_factory.mktemp("hub")) as hub:
        yield hub


@pytest.fixture(scope="session")
def hub_user(jupyterhub: Hub) -> HubUser:
    """alice, her default server started, and a token limited to her own servers."""
    name = "alice"
    jupyterhub.add_user(name)
    token = jupyterhub.token_for(name, [scope.format(name=name) for scope in USER_SCOPES])
    server_url = jupyterhub.start_server(name)
    return HubUser(name=name, token=token, server_url=server_url, hub=jupyterhub)
