"""The remote session: which servers a pytest run uses, who starts and stops them, and
which one each xdist worker runs its kernels on.

The process that starts the run (pytest itself, or xdist's controller) starts any
server that is not running, in batches, and stops at the end exactly the ones it
started. Workers only attach: worker ``gwN`` runs on server ``N mod K``. A gateway is
one server that puts each kernel where it likes. Nothing here is needed without
``--nb-hub-url``, ``--nb-server-url`` or ``--nb-gateway-url``.
"""

from __future__ import annotations

import ast
import sys
import threading
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ..config.remote import RemoteSettings
from ..errors import NbHarnessError
from ..execute.signals import InterruptOnTerm
from ..jupyter_api.gateway import Gateway
from ..jupyter_api.hub import Hub
from ..jupyter_api.rest import RemoteError, Server
from ..report import render

#: The name the session registers under with pytest's plugin manager.
REMOTE_PLUGIN = "nbharness-remote"
#: Servers started at once: a hub throttles spawns (429) past its own limit anyway.
START_BATCH = 4


class RemoteSession:
    """The pytest side of remote runs: registered as a plugin when they are asked for."""

    def __init__(self, config: pytest.Config, settings: RemoteSettings) -> None:
        self.config = config
        self.settings = settings
        self.servers: list[Server] = []
        #: Hub servers this process started, and so stops at the end.
        self.started: list[str] = []
        self.worker = getattr(config, "workerinput", None)
        self._output = threading.Lock()
        self._in_place = False
        self._term = InterruptOnTerm()

    # Hooks.

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # From here until the servers are stopped, SIGTERM unwinds like Ctrl-C.
        self._term.__enter__()
        try:
            if self.worker is None:
                self.servers = self._prepare()
            else:
                self.servers = self._attach()
        except NbHarnessError as exc:
            self._stop()
            raise pytest.UsageError(f"nbharness: {render(exc, 'short')}") from None
        except BaseException:
            self._stop()  # interrupted: pytest skips pytest_sessionfinish after this hook
            raise
        self._end_progress()
        self._record_junit()

    @pytest.hookimpl(trylast=True)  # after the executor deleted its kernels
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._stop()

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = [f"nbharness remote: {self.settings.describe()}"]
        for index, server in enumerate(self.servers):
            image = f" image={server.image}" if server.image else ""
            workers = ",".join(self._workers_of(index))
            shown = f" workers={workers}" if workers else ""
            lines.append(f"  {server.label} {server.url}{image}{shown}")
        return lines

    # What the executor needs.

    def server(self) -> Server:
        """The server this process runs its kernels on."""
        index = 0
        if self.worker is not None:
            index = _worker_number(self.worker) % len(self.servers)
        return self.servers[index]

    # The rest.

    def _prepare(self) -> list[Server]:
        settings = self.settings
        if settings.gateway_url is not None:
            gateway = self._gateway()
            gateway.rest().get("api/kernelspecs")  # a bad URL or token fails here, once
            return [gateway]
        if settings.hub_url is None:
            assert settings.server_url is not None
            server = Server(settings.server_url, settings.token)
            _check_access(server, "", settings.remote_cwd)
            return [server]
        hub = settings.hub()
        hub.version()  # unreachable hub: fail here, once
        names = settings.names()[: max(self._worker_count(), 1)]
        servers: dict[str, Server] = {}
        missing = []
        for name in names:
            running = hub.running(name)
            if running is None:
                missing.append(name)
            else:
                servers[name] = running
        for start in range(0, len(missing), START_BATCH):
            batch = missing[start : start + START_BATCH]
            self.started.extend(batch)  # stopped at the end even if the start fails
            servers.update(zip(batch, self._start_batch(hub, batch), strict=True))
        for server in servers.values():
            scope = f"access:servers!user={settings.hub_user}"
            default_kernel = _check_access(server, scope, settings.remote_cwd)
            server.image = server.image or _image_of(server, default_kernel)
        return [servers[name] for name in names]

    def _start_batch(self, hub: Hub, names: list[str]) -> list[Server]:
        """Start ``names`` at once. On Ctrl-C, return at once: the threads' starts end
        when the servers are stopped, and waiting for them could take minutes."""
        pool = ThreadPoolExecutor(len(names))
        try:
            return list(pool.map(lambda name: self._start(hub, name), names))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _start(self, hub: Hub, name: str) -> Server:
        settings = self.settings
        return hub.start(
            name,
            settings.user_options,
            settings.start_timeout,
            settings.start_timeout_source,
            self._progress,
        )

    def _attach(self) -> list[Server]:
        """A worker's view: the servers the controller made sure of, looked up again."""
        settings = self.settings
        if settings.gateway_url is not None:
            return [self._gateway()]
        if settings.hub_url is None:
            assert settings.server_url is not None
            return [Server(settings.server_url, settings.token)]
        hub = settings.hub()
        names = settings.names()[: max(self._worker_count(), 1)]
        servers = []
        for name in names:
            server = hub.running(name)
            if server is None:
                raise RemoteError(f"{hub.label(name)} on {hub.url} is not running")
            servers.append(server)
        return servers

    def _gateway(self) -> Gateway:
        settings = self.settings
        assert settings.gateway_url is not None
        return Gateway(settings.gateway_url, settings.token, settings.kernel_env)

    def _stop(self) -> None:
        """Stop the servers this process started, then let SIGTERM kill again."""
        try:
            self._end_progress()
            self._stop_started()
        finally:
            self._term.__exit__()

    def _stop_started(self) -> None:
        if not self.started:
            return
        hub = self.settings.hub()
        names, self.started = self.started, []
        for name in names:
            try:
                hub.stop(name, remove=bool(name))
            except NbHarnessError as exc:
                self._progress(f"could not stop {hub.label(name)}: {exc.summary}")

    def _progress(self, line: str) -> None:
        """One terse line per event: rewritten in place on a terminal, one each in CI."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        text = f"nbharness: {line}"
        with self._output:  # servers start in parallel threads
            if reporter is None:
                print(text, file=sys.stderr)
            elif reporter.isatty():
                reporter.rewrite(text, erase=True)
                self._in_place = True
            else:
                reporter.write_line(text)

    def _end_progress(self) -> None:
        """Move past a progress line rewritten in place, so the next output starts clean."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self._in_place and reporter is not None:
            reporter.write("\n")
        self._in_place = False

    def _worker_count(self) -> int:
        if self.worker is not None:
            return int(self.worker.get("workercount", 1))
        numprocesses = getattr(self.config.option, "numprocesses", None)
        return int(numprocesses) if isinstance(numprocesses, int) and numprocesses else 1

    def _workers_of(self, index: int) -> list[str]:
        """The xdist workers that run on server ``index`` (none named without xdist)."""
        count = self._worker_count()
        if count <= 1 or self.worker is not None:
            return []
        return [f"gw{n}" for n in range(count) if n % len(self.servers) == index]

    def _record_junit(self) -> None:
        """The server each worker uses, as junit properties (for CI dashboards)."""
        try:
            from _pytest.junitxml import xml_key  # the junit plugin has no public API for it
        except ImportError:  # pragma: no cover
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is None:
            return
        for index, server in enumerate(self.servers):
            suffix = f"_{index + 1}" if len(self.servers) > 1 else ""
            xml.add_global_property(f"nbharness_server{suffix}", server.url)
            if server.image:
                xml.add_global_property(f"nbharness_image{suffix}", server.image)
            workers = ",".join(self._workers_of(index))
            if workers:
                xml.add_global_property(f"nbharness_workers{suffix}", workers)


def _check_access(server: Server, scope: str, remote_cwd: str | None) -> str | None:
    """Ask the server something harmless, so a bad URL or token fails here, once; and
    make sure ``--nb-remote-cwd`` exists (the server would quietly use a parent folder).
    The server's default kernel, from the answer."""
    rest = server.rest()
    try:
        kernelspecs = rest.get("api/kernelspecs") or {}
    except RemoteError as exc:
        if exc.status == 403 and scope:
            raise RemoteError(f"{exc}; running kernels there needs the scope {scope}") from None
        raise
    default_kernel = kernelspecs.get("default")
    if not remote_cwd:
        return default_kernel
    path = remote_cwd.strip("/")
    try:
        model = rest.get(f"api/contents/{urllib.parse.quote(path)}?content=0")
    except RemoteError as exc:
        if exc.status != 404:
            raise
        try:
            rest.get("api/contents?content=0")
        except RemoteError:
            return default_kernel  # no contents service (a gateway): nothing to check
        raise RemoteError(
            f"--nb-remote-cwd {remote_cwd}: no such folder on {server.label}"
        ) from None
    if (model or {}).get("type") != "directory":
        raise RemoteError(f"--nb-remote-cwd {remote_cwd}: not a folder on {server.label}")
    return default_kernel


#: What a kernel says its server runs: KubeSpawner sets JUPYTER_IMAGE_SPEC in the pod.
IMAGE_PROBE = "__import__('os').environ.get('JUPYTER_IMAGE_SPEC') or ''"


def _image_of(server: Server, kernel: str | None) -> str:
    """The server's image, asked of one of its kernels when the hub did not say (once per
    session and server: about half a second)."""
    from nbformat.v4 import new_code_cell, new_notebook

    from ..execute import ExecutorSettings, Run, make_executor

    probe = new_notebook(cells=[new_code_cell(IMAGE_PROBE)])
    run = Run(Path("image.ipynb"), probe, Path("."), cell_timeout=30, kernel=kernel)
    with make_executor("remote", ExecutorSettings(server=server, spare=False)) as executor:
        result = executor.execute(run)
    outputs = result.notebook.cells[0].get("outputs", [])
    shown = outputs[0].get("data", {}).get("text/plain", "''") if outputs else "''"
    try:
        return str(ast.literal_eval(shown))
    except (ValueError, SyntaxError):
        return ""


def _worker_number(workerinput: Mapping[str, Any]) -> int:
    worker_id = str(workerinput.get("workerid", "gw0"))
    digits = "".join(ch for ch in worker_id if ch.isdigit())
    return int(digits or 0)
