"""A small REST client for Jupyter servers and JupyterHub, with their failure modes named.

The token only ever travels in the ``Authorization`` header (JupyterHub 5+ ignores
``?token=`` from non-browser clients, and URLs end up in logs), so no cookie or XSRF
dance is needed. Idempotent requests (GET, DELETE) are retried on 502/503/504 and on
dropped connections, with jittered backoff; a POST never is, since a retried kernel
POST would start a second kernel. Every error is one line that names the URL and never
the token.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any, Literal

from ..errors import NbHarnessError

#: Statuses an idempotent request is retried on: the proxy or server is briefly away.
RETRY_STATUSES = {502, 503, 504}
RETRIES = 3
BACKOFF_S = 0.25
#: The longest ``Retry-After`` we honour inside one request before giving up.
MAX_RETRY_AFTER_S = 30.0
#: How long a DELETE is retried while nothing listens (a hub restarts its proxy in ~5 s).
REFUSED_PATIENCE_S = 10.0
#: A token passed in a URL's query: shown as ``token=***``.
_TOKEN_QUERY = re.compile(r"(token=)[\w.~%-]+")


#: Why a request got no answer: it timed out, the connection dropped, or nothing listened.
Fault = Literal["timeout", "dropped", "refused"]


class RemoteError(NbHarnessError):
    """A Jupyter server or hub could not be reached, or said no.

    ``status`` is the HTTP status of a refusal; ``fault`` why there was no answer at all;
    ``missing`` that the server has no such kernel (not: that its URL routes nowhere).
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        retry_after: float = 0.0,
        fault: Fault | None = None,
        missing: bool = False,
    ) -> None:
        # Pickled (xdist) from these, as it was built.
        super().__init__(message, status, retry_after, fault, missing)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.fault = fault
        self.missing = missing

    @property
    def timed_out(self) -> bool:
        return self.fault == "timeout"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A hub redirects requests for a stopped server to its login pages: we want the 302."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class Rest:
    """JSON over HTTP to one base URL (a hub's ``/hub/api/`` or a server's ``/user/x/``)."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:  # the token stays out of every repr and traceback
        return f"Rest({self.base_url!r})"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self._token}"} if self._token else {}

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, timeout: float | None = None) -> Any:
        return self.request("POST", path, body if body is not None else {}, timeout)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body)

    def request(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> Any:
        """The decoded JSON answer (``None`` when empty), or a ``RemoteError``."""
        patience = time.monotonic() + REFUSED_PATIENCE_S
        attempt = 0
        while True:
            try:
                return self._json(method, path, body, timeout)
            except RemoteError as exc:
                if not _worth_another_try(method, exc, attempt, patience):
                    raise
                wait = exc.retry_after or _backoff(min(attempt, RETRIES))
                time.sleep(min(wait, MAX_RETRY_AFTER_S))
                attempt += 1

    def _json(self, method: str, path: str, body: Any, timeout: float | None) -> Any:
        """One request's decoded JSON answer (``None`` when empty)."""
        with self._open(method, path, body, timeout) as response:
            try:
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise self._unreachable(path, exc) from None
            content_type = response.headers.get_content_type()
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise self._not_json(method, path, content_type) from None

    def lines(self, path: str, read_timeout: float) -> Iterator[str]:
        """The response's lines as they arrive (a server-sent event stream)."""
        with self._open("GET", path, None, timeout=read_timeout) as response:
            try:
                for raw in response:
                    yield raw.decode("utf-8", "replace").rstrip("\r\n")
            except (OSError, http.client.HTTPException) as exc:
                raise self._unreachable(path, exc) from None

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def _open(
        self, method: str, path: str, body: Any, timeout: float | None = None
    ) -> http.client.HTTPResponse:
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url(path), data, headers, method=method)
        try:
            response: http.client.HTTPResponse = _OPENER.open(
                request, timeout=timeout or self.timeout
            )
            return response
        except urllib.error.HTTPError as exc:
            raise self._refused(method, path, exc) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self._unreachable(path, exc) from None
        except ValueError:  # http.client refuses a header: its message would quote the token
            raise RemoteError(
                self._redact(
                    f"{method} {self.url(path)}: the request has an invalid header "
                    "(a token with a line break or control character?)"
                )
            ) from None

    def _refused(self, method: str, path: str, exc: urllib.error.HTTPError) -> RemoteError:
        status, url = exc.code, self.url(path)
        said = _message(exc)
        retry_after = _seconds(exc.headers.get("Retry-After")) if exc.headers else 0.0
        exc.close()
        if status in (401, 403) and "requires any of" in said:
            scopes = said[said.index("requires any of") + len("requires any of") :].strip(" .")
            reason = f"the token lacks a scope this needs: {scopes} (HTTP {status})"
        elif status == 403 and said and said.lower() != "forbidden":
            reason = f"refused (HTTP 403): {said}"  # a policy's own words (a gateway's)
        elif status in (401, 403):
            reason = f"the token was refused (HTTP {status}): wrong, expired or without access"
        elif status in (302, 303, 424) or (status == 503 and "not running" in said):
            reason = f"the server is not running (HTTP {status})"
        elif status == 429:
            reason = f"too many requests (HTTP 429), retry after {retry_after:g} s"
        else:
            reason = f"HTTP {status}" + (f": {said}" if said else "")
        return RemoteError(
            self._redact(f"{method} {url}: {reason}"),
            status=status,
            retry_after=retry_after,
            # jupyter_server's words for a kernel it does not have (a proxy's 404 has none)
            missing=status == 404 and "does not exist" in said,
        )

    def _unreachable(self, path: str, exc: BaseException) -> RemoteError:
        reason = getattr(exc, "reason", None) or exc
        fault = _fault(reason)
        text = "no answer in time" if fault == "timeout" else str(reason) or type(reason).__name__
        return RemoteError(self._redact(f"cannot reach {self.url(path)}: {text}"), fault=fault)

    def _not_json(self, method: str, path: str, content_type: str) -> RemoteError:
        """A 200 that is not the API's answer: a login page (SSO, or a ``?token=`` URL)."""
        if "token=" in urllib.parse.urlsplit(self.base_url).query:
            hint = "a ?token= in the URL does not reach the API: pass the token in $JUPYTER_TOKEN"
        else:
            hint = "a login page? check the URL"
        return RemoteError(
            self._redact(
                f"{method} {self.url(path)}: the answer is {content_type}, not JSON ({hint})"
            )
        )

    def _redact(self, text: str) -> str:
        """``text`` without the token (nor any line of it) nor a ``token=`` query value."""
        for secret in {self._token, *self._token.split()} - {""}:
            text = text.replace(secret, "***")
        return _TOKEN_QUERY.sub(r"\1***", text)


def _message(exc: urllib.error.HTTPError) -> str:
    """The server's own one-line reason, from its JSON body or the first line of text."""
    try:
        body = exc.read(65536).decode("utf-8", "replace")
    except OSError:
        return ""
    try:
        reply = json.loads(body)
        # jupyter_server gives an HTTPError's own words as "reason", and an unforeseen
        # failure's traceback, whose last line says what failed (a gateway's kernel launch).
        said = reply.get("reason") or reply.get("message", "")
        trace = str(reply.get("traceback") or "").strip().splitlines()
        if trace:
            said = f"{said}: {trace[-1]}"
    except (ValueError, AttributeError):
        said = "" if body.lstrip().startswith("<") else body
    lines = str(said).strip().splitlines()
    return lines[0][:200] if lines else ""


def _seconds(value: str | None) -> float:
    try:
        return max(float(value or 0), 0.0)
    except ValueError:
        return 0.0


def _backoff(attempt: int) -> float:
    return float(BACKOFF_S * 2**attempt * random.uniform(0.5, 1.5))


def _fault(reason: object) -> Fault | None:
    if isinstance(reason, TimeoutError):
        return "timeout"
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return "dropped"  # http.client.RemoteDisconnected is a ConnectionResetError
    return None


def _worth_another_try(method: str, exc: RemoteError, attempt: int, patience: float) -> bool:
    """Idempotent requests are retried a few times on a busy hub, a proxy briefly away or a
    dropped connection (not when nothing listens: that is a wrong URL, said at once). A
    DELETE left undone leaves a kernel running, so it also waits out a proxy's restart."""
    if method not in ("GET", "DELETE", "HEAD"):
        return False
    if method == "DELETE" and exc.fault == "refused":
        return time.monotonic() < patience
    if attempt >= RETRIES:
        return False
    if exc.status is not None:
        return exc.status == 429 or exc.status in RETRY_STATUSES
    return exc.fault == "dropped"


class Server:
    """A Jupyter server to run kernels on: a hub user's server, or a plain server or gateway."""

    def __init__(self, url: str, token: str, label: str = "", image: str = "") -> None:
        self.url = url.rstrip("/") + "/"
        self._token = token
        #: How reports name it: ``alice/`` on a hub, else its URL.
        self.label = label or self.url
        self.image = image

    def __repr__(self) -> str:
        return f"Server({self.url!r})"

    def rest(self, timeout: float = 30.0) -> Rest:
        return Rest(self.url, self._token, timeout)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :]
