"""The REST client and the hub client against a scripted fake, for the faults a real hub
cannot produce on cue: 5xx on reads, 429 with Retry-After, connection drops."""

from __future__ import annotations

import json
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from nbharness.jupyter_api.hub import Hub, HubError
from nbharness.jupyter_api.rest import RemoteError, Rest

TOKEN = "s3cr3t-token-value"

#: One scripted answer: status, JSON body (or None), extra headers.
Answer = tuple[int, Any, dict[str, str]]


class FakeServer:
    """Answers each (method, path) from a script, in order; the last answer repeats."""

    def __init__(self, port: int = 0) -> None:
        self.script: dict[tuple[str, str], list[Answer]] = {}
        self.seen: list[tuple[str, str, str | None, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.seen.append((self.command, self.path, self.headers["Authorization"], body))
                answers = fake.script.get((self.command, self.path), [(404, None, {})])
                status, payload, headers = answers.pop(0) if len(answers) > 1 else answers[0]
                if status == -1:  # drop the connection without an answer
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.script[(method, path)] = list(answers)

    def calls(self, method: str, path: str) -> int:
        return sum(1 for m, p, _, _ in self.seen if (m, p) == (method, path))


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_the_token_travels_in_the_header_only(fake: FakeServer) -> None:
    fake.on("GET", "/api/status", (200, {"ok": True}, {}))
    assert Rest(fake.url, TOKEN).get("api/status") == {"ok": True}
    _, path, auth, _ = fake.seen[0]
    assert auth == f"token {TOKEN}"
    assert TOKEN not in path
    assert TOKEN not in repr(Rest(fake.url, TOKEN))


def test_reads_are_retried_on_5xx_and_dropped_connections(fake: FakeServer) -> None:
    fake.on("GET", "/api/x", (503, None, {}), (-1, None, {}), (502, None, {}), (200, [1], {}))
    assert Rest(fake.url, TOKEN).get("api/x") == [1]
    assert fake.calls("GET", "/api/x") == 4


def test_reads_give_up_after_a_bound(fake: FakeServer) -> None:
    fake.on("GET", "/api/x", (503, {"message": "upstream down"}, {}))
    with pytest.raises(RemoteError, match="HTTP 503: upstream down") as raised:
        Rest(fake.url, TOKEN).get("api/x")
    assert fake.calls("GET", "/api/x") == 4  # the first try and three retries
    assert raised.value.status == 503


def test_a_post_is_never_retried(fake: FakeServer) -> None:
    """A retried kernel POST would start a second kernel."""
    fake.on("POST", "/api/kernels", (503, None, {}), (201, {"id": "k"}, {}))
    with pytest.raises(RemoteError, match="HTTP 503"):
        Rest(fake.url, TOKEN).post("api/kernels", {"name": "python3"})
    assert fake.calls("POST", "/api/kernels") == 1


def test_429_is_retried_after_the_time_the_server_asks(fake: FakeServer) -> None:
    fake.on("GET", "/api/x", (429, None, {"Retry-After": "1"}), (200, {"ok": 1}, {}))
    started = time.monotonic()
    assert Rest(fake.url, TOKEN).get("api/x") == {"ok": 1}
    assert time.monotonic() - started >= 1.0


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (403, {"message": "Forbidden"}, "the token was refused (HTTP 403)"),
        (401, None, "the token was refused (HTTP 401)"),
        (
            403,
            {"message": "Action is not authorized with current scopes; requires any of [servers]"},
            "the token lacks a scope this needs: [servers] (HTTP 403)",
        ),
        (
            403,
            {"message": "User 'mallory' is not authorized to start kernel 'python3'."},
            "refused (HTTP 403): User 'mallory' is not authorized to start kernel 'python3'.",
        ),
        (
            403,
            {"message": "Forbidden", "reason": "User 'mallory' is not authorized"},
            "refused (HTTP 403): User 'mallory' is not authorized",
        ),
        (
            500,
            {"message": "Unknown server error", "traceback": "Traceback:\n  x\nOSError: no"},
            "HTTP 500: Unknown server error: OSError: no",
        ),
        (424, {"message": "alice's server is not running"}, "the server is not running (HTTP 424)"),
        (302, None, "the server is not running (HTTP 302)"),
    ],
)
def test_refusals_are_one_line_without_the_token(
    fake: FakeServer, status: int, body: Any, said: str
) -> None:
    headers = {"Location": "/hub/login"} if status == 302 else {}
    fake.on("GET", "/api/kernels", (status, body, headers))
    with pytest.raises(RemoteError) as raised:
        Rest(fake.url, TOKEN).get("api/kernels")
    message = str(raised.value)
    assert said in message
    assert message.startswith(f"GET {fake.url}api/kernels: ")
    assert "\n" not in message
    assert TOKEN not in message


def test_nothing_listening_is_named() -> None:
    with pytest.raises(RemoteError, match=r"cannot reach http://127\.0\.0\.1:9/x: .*refused"):
        Rest("http://127.0.0.1:9/", TOKEN).get("x")


def test_a_hub_that_throttles_spawns_is_waited_for(fake: FakeServer) -> None:
    """429 on the spawn POST: wait Retry-After, try again; then follow it to ready."""
    fake.on("GET", "/hub/api/", (200, {"version": "6.1.1"}, {}))
    fake.on(
        "POST",
        "/hub/api/users/alice/servers/a",
        (429, {"message": "Too many users trying to log in right now"}, {"Retry-After": "1"}),
        (202, None, {}),
    )
    fake.on("GET", "/hub/api/users/alice/servers/a/progress", (400, None, {}))
    ready = {"servers": {"a": {"ready": True, "url": "/user/alice/a/"}}}
    fake.on("GET", "/hub/api/users/alice", (200, ready, {}))
    lines: list[str] = []
    server = Hub(fake.url, "alice", TOKEN).start("a", {"image": "x"}, 30, "test", lines.append)
    assert server.url == f"{fake.url}user/alice/a/"
    assert fake.calls("POST", "/hub/api/users/alice/servers/a") == 2
    posted = [body for m, _, _, body in fake.seen if m == "POST"]
    assert posted[-1] == {"user_options": {"image": "x"}}  # always explicit
    assert any("HTTP 429" in line for line in lines)


def test_a_spawn_that_never_gets_ready_names_the_limit_and_the_events(fake: FakeServer) -> None:
    fake.on("GET", "/hub/api/", (200, {"version": "5.2.0"}, {}))
    fake.on("POST", "/hub/api/users/alice/server", (202, None, {}))
    fake.on("GET", "/hub/api/users/alice/server/progress", (400, None, {}))
    pending = {"servers": {"": {"ready": False, "pending": "spawn"}}}
    fake.on("GET", "/hub/api/users/alice", (200, pending, {}))
    with pytest.raises(HubError, match=r"not ready within 1 s \(--nb-hub-start-timeout\)"):
        Hub(fake.url, "alice", TOKEN).start("", {}, 1, "--nb-hub-start-timeout", print)
    posted = [body for m, _, _, body in fake.seen if m == "POST"]
    assert posted == [{}]  # hubs before 6 take the bare options


def test_a_delete_is_retried_while_the_proxy_restarts() -> None:
    """A hub restarts its proxy within seconds: a kernel's DELETE must outlast that, or the
    kernel stays on the server (a GET still fails at once, naming what did not answer)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    back: list[FakeServer] = []

    def come_back() -> None:
        back.append(FakeServer(port=port))
        back[0].on("DELETE", "/api/kernels/k1", (204, None, {}))
        back[0].thread.start()

    comes_back = threading.Timer(1.0, come_back)
    comes_back.start()
    try:
        Rest(f"http://127.0.0.1:{port}/", TOKEN).delete("api/kernels/k1")
    finally:
        comes_back.join()
        for fake in back:
            fake.httpd.shutdown()
            fake.httpd.server_close()
    assert back[0].calls("DELETE", "/api/kernels/k1") == 1


@pytest.mark.parametrize(
    "error",
    [
        RemoteError("no answer", status=503, retry_after=2.0, fault="timeout", missing=True),
        HubError("server 'x' did not start", ["Spawning", "Spawn failed"]),
    ],
    ids=lambda e: type(e).__name__,
)
def test_remote_errors_survive_pickling_with_their_fields(error: RemoteError) -> None:
    """xdist sends errors between processes: every field comes back, not only the text."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.details() == error.details()
    fields = ("status", "retry_after", "fault", "missing", "timed_out")
    assert [getattr(copy, name) for name in fields] == [getattr(error, name) for name in fields]


def test_remote_and_hub_errors_render_their_message_not_their_fields():
    from nbharness.report import render

    assert render(RemoteError("GET x: refused", 404), "short") == "GET x: refused"
    assert render(HubError("alice/ failed to start", ["spawn failed"]), "short").startswith(
        "alice/ failed to start\n"
    )
