"""A JupyterHub REST client: find a user's server, start it and follow its progress, stop it.

Only what running notebooks needs, over the documented API (``/hub/api``) with the
token in a header. Starting always sends ``user_options`` explicitly, because a hub
reuses the previous launch's options when a request has none.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from .rest import RemoteError, Rest, Server

#: How often the server model is polled where no event stream says more.
POLL_S = 0.5
#: The progress stream sends a blank keep-alive line every 8 s: a read waits longer.
STREAM_READ_S = 20.0

Progress = Callable[[str], None]


class HubError(RemoteError):
    """A server could not be found, started or stopped; ``events`` is the hub's log of it."""

    def __init__(self, message: str, events: list[str] | None = None) -> None:
        super().__init__(message)
        self.events = list(events or [])
        self.args = (message, self.events)  # pickled (xdist) from these, as it was built

    def details(self) -> list[str]:
        """The hub's event log, when it says more than the summary does."""
        if not self.events or (len(self.events) == 1 and self.events[0] in str(self)):
            return []
        return ["hub events:", *(f"  {event}" for event in self.events)]


class Hub:
    """One user on one hub, as the token in hand allows."""

    def __init__(self, url: str, user: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.user = user
        self._token = token
        self.rest = Rest(f"{self.url}/hub/api/", token)

    def __repr__(self) -> str:
        return f"Hub({self.url!r}, user={self.user!r})"

    def label(self, name: str) -> str:
        return f"{self.user}/{name}"

    def version(self) -> tuple[int, ...]:
        model = self.rest.get("") or {}
        return tuple(int(part) for part in _numeric(str(model.get("version", "0"))))

    def servers(self) -> dict[str, Any] | None:
        """The user's servers by name ("" is the default one), or ``None`` if the token
        may not read them (``access:servers`` alone is enough to run kernels)."""
        try:
            model = self.rest.get(f"users/{_quote(self.user)}")
        except RemoteError as exc:
            if exc.status == 403:
                return None
            raise
        return dict((model or {}).get("servers") or {})

    def server(self, name: str, model: Mapping[str, Any] | None = None) -> Server:
        """The server ``name``, at the URL the hub gives (or the standard one)."""
        path = (model or {}).get("url") or f"/user/{_quote(self.user)}/{_quote(name)}"
        options = (model or {}).get("user_options") or {}
        image = options.get("image") or options.get("profile") or ""
        return Server(self.url + path, self._token, label=self.label(name), image=str(image))

    def running(self, name: str) -> Server | None:
        """The server if it is up (asked of the server itself when the hub may not say)."""
        servers = self.servers()
        if servers is not None:
            model = servers.get(name)
            return self.server(name, model) if model and model.get("ready") else None
        return self._answering(name)

    def _answering(self, name: str) -> Server | None:
        """The server if it answers at its standard URL (for tokens that cannot read the
        hub's model of it)."""
        server = self.server(name)
        try:
            server.rest().get("api/status")
        except RemoteError as exc:
            if exc.status in (302, 303, 404, 424, 503):
                return None
            raise
        return server

    def start(
        self,
        name: str,
        user_options: Mapping[str, Any],
        timeout: float,
        timeout_source: str,
        progress: Progress,
    ) -> Server:
        """Start ``name`` and wait until it is ready, reporting each progress event."""
        deadline = time.monotonic() + timeout
        body: Any = dict(user_options)
        if self.version() >= (6,):
            body = {"user_options": dict(user_options)}  # older hubs take the bare options
        events: list[str] = []
        while True:
            try:
                # A hub holds the request open while it spawns (up to its slow_spawn_timeout):
                # never past our own deadline; the progress stream says the rest.
                self.rest.post(self._path(name), body, timeout=_left(deadline))
                break
            except RemoteError as exc:
                said = str(exc)
                if exc.timed_out:
                    break
                if exc.status == 400 and "already running" in said:
                    break
                if exc.status is not None and exc.status >= 500:
                    # The spawn failed at once; the hub's events say why.
                    self._follow(
                        name, min(deadline, time.monotonic() + POLL_S * 4), events, progress
                    )
                    raise self._failed(name, events[-1] if events else said, events) from None
                wait = exc.retry_after if exc.status == 429 else POLL_S
                # A 400 means "later" only while the hub is busy with this server (a stop
                # under way); otherwise (an invalid name, say) asking again cannot help.
                later = exc.status == 429 or (exc.status == 400 and self._pending(name))
                if not later or time.monotonic() + wait > deadline:
                    raise self._failed(name, str(exc), events) from None
                events.append(said)
                progress(f"{self.label(name)}: waiting ({said.rpartition(': ')[2]})")
                time.sleep(wait)
        self._follow(name, deadline, events, progress)
        model = self._wait_ready(name, deadline, events, timeout, timeout_source)
        return self.server(name, model)

    def stop(self, name: str, remove: bool, timeout: float = 60.0) -> None:
        """Stop ``name`` (and forget it, for a named server we created); wait till it is gone."""
        body = {"remove": True} if remove and name else None
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.rest.delete(self._path(name), body)
                break
            except RemoteError as exc:
                if exc.status == 404:  # no such server
                    break
                # A 400 while it starts, or a 500 when the stop raced the spawn: the hub
                # takes a stop once the spawn ended; a server no longer active is stopped.
                if exc.status != 400 and (exc.status or 0) < 500:
                    raise
                if not self._active(name):
                    break
                if time.monotonic() > deadline:
                    raise
                time.sleep(POLL_S)
        while time.monotonic() < deadline:
            servers = self.servers()
            if servers is None or name not in servers:
                return
            time.sleep(POLL_S)
        raise HubError(f"{self.label(name)} did not stop within {timeout:g} s")

    def _pending(self, name: str) -> bool:
        """The hub is starting or stopping ``name`` (so a refused start may work later);
        ``True`` when the token may not read the hub's model of it, to wait as before."""
        servers = self.servers()
        if servers is None:
            return True
        return bool((servers.get(name) or {}).get("pending"))

    def _active(self, name: str) -> bool:
        """The server is running or starting, as far as the token may see."""
        return name in (self.servers() or {})

    def _path(self, name: str) -> str:
        user = _quote(self.user)
        return f"users/{user}/servers/{_quote(name)}" if name else f"users/{user}/server"

    def _follow(self, name: str, deadline: float, events: list[str], progress: Progress) -> None:
        """Report the spawn's progress events until ready, failed, or the stream ends."""
        try:
            read_timeout = min(STREAM_READ_S, _left(deadline))
            for line in self.rest.lines(self._path(name) + "/progress", read_timeout):
                if time.monotonic() > deadline:
                    return
                if not line.startswith("data:"):
                    continue  # keep-alive lines and event names
                try:
                    event = json.loads(line[len("data:") :])
                except ValueError:
                    continue
                message = str(event.get("message", "")).strip()
                events.append(message)
                percent = event.get("progress")
                shown = f"[{percent:>3}%] " if isinstance(percent, int) else ""
                progress(f"{self.label(name)}: {shown}{message}")
                if event.get("failed"):
                    raise self._failed(name, message, events)
                if event.get("ready"):
                    return
        except RemoteError as exc:
            if exc.status not in (400, 403, 404, None):  # not starting, not readable, timed out
                raise
        # The stream ended or is not ours to read: the server model says the rest.

    def _wait_ready(
        self, name: str, deadline: float, events: list[str], timeout: float, source: str
    ) -> Mapping[str, Any]:
        while True:
            servers = self.servers()
            if servers is None and self._answering(name) is not None:
                return {}
            if servers is not None:
                model = servers.get(name)
                if model is None:
                    raise self._failed(name, "the hub dropped it while it started", events)
                if model.get("ready"):
                    return dict(model)
            if time.monotonic() > deadline:
                raise self._failed(name, f"not ready within {timeout:g} s ({source})", events)
            time.sleep(POLL_S)

    def _failed(self, name: str, why: str, events: list[str]) -> HubError:
        return HubError(f"{self.label(name)} on {self.url} failed to start: {why}", events)


def _quote(segment: str) -> str:
    """A user or server name as one segment of a URL path."""
    return urllib.parse.quote(segment, safe="")


def _left(deadline: float) -> float:
    """Seconds until ``deadline``, at least a moment (a request needs some time)."""
    return max(deadline - time.monotonic(), 0.1)


def _numeric(version: str) -> list[str]:
    parts = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        parts.append(digits)
    return parts
