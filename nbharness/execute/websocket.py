"""A kernel's channels over a Jupyter server's websocket, for a remote kernel.

The server speaks two framings: ``v1.kernel.websocket.jupyter.org`` (binary: offsets,
channel, header, parent, metadata, content, buffers), chosen when the client offers it,
and the legacy JSON text one, which servers fronting a gateway force. We offer v1 and
speak whatever the server picks.

A remote kernel dies quietly: the server restarts it and only says so on iopub, with a
``status: restarting`` (or ``dead``) message that has no parent. We watch for it, so
nbclient's liveness poll sees the death within a second instead of waiting for the cell's
timeout. A dropped websocket is reconnected with the same session id (the server
replays what it buffered meanwhile), once it is clear the kernel is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Awaitable, Callable
from queue import Empty
from typing import Any

from jupyter_client.jsonutil import extract_dates, json_default
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
CHANNELS = ("shell", "iopub", "stdin", "control")
#: Outputs can be large (images, data frames): no practical cap.
MAX_MESSAGE_BYTES = 1 << 30
#: Keep idle websockets open through proxies while a long cell runs.
PING_INTERVAL_S = 30.0
#: How many times a dropped websocket is reconnected before the kernel counts as lost.
RECONNECTS = 3


def encode_v1(channel: str, msg: dict[str, Any]) -> bytes:
    parts = [
        json.dumps(msg.get(key, {}), default=json_default).encode()
        for key in ("header", "parent_header", "metadata", "content")
    ]
    parts += [bytes(buffer) for buffer in msg.get("buffers", [])]
    channel_bytes = channel.encode()
    offsets = [8 * (2 + len(parts) + 1)]
    offsets.append(offsets[-1] + len(channel_bytes))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets)
    return b"".join([head, channel_bytes, *parts])


def decode_v1(frame: bytes) -> dict[str, Any]:
    (count,) = struct.unpack_from("<Q", frame)
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    channel = frame[offsets[0] : offsets[1]].decode()
    parts = [frame[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]
    msg = {
        key: json.loads(part) if part else {}
        for key, part in zip(
            ("header", "parent_header", "metadata", "content"), parts[:4], strict=False
        )
    }
    msg["buffers"] = [memoryview(part) for part in parts[4:]]
    msg["channel"] = channel
    return msg


def encode_legacy(channel: str, msg: dict[str, Any]) -> str:
    fields = {key: msg.get(key, {}) for key in ("header", "parent_header", "metadata", "content")}
    return json.dumps({**fields, "channel": channel, "buffers": []}, default=json_default)


def decode_legacy(frame: str | bytes) -> dict[str, Any]:
    """A legacy text frame, or a legacy binary one (a message that carries buffers)."""
    if isinstance(frame, str):
        msg: dict[str, Any] = json.loads(frame)
        msg.setdefault("buffers", [])
        return msg
    (count,) = struct.unpack_from("!I", frame)
    offsets = [*struct.unpack_from(f"!{count}I", frame, 4), len(frame)]
    msg = json.loads(frame[offsets[0] : offsets[1]])
    msg["buffers"] = [memoryview(frame[offsets[i] : offsets[i + 1]]) for i in range(1, count)]
    return msg


def _normalised(msg: dict[str, Any]) -> dict[str, Any]:
    """The shape jupyter_client's own deserialiser gives: top-level type and id, dates."""
    msg["header"] = extract_dates(msg.get("header") or {})
    msg["parent_header"] = extract_dates(msg.get("parent_header") or {})
    msg.setdefault("metadata", {})
    msg.setdefault("content", {})
    msg["msg_type"] = msg["header"].get("msg_type", "")
    msg["msg_id"] = msg["header"].get("msg_id", "")
    return msg


#: Put in every channel's queue on close, so a reader still waiting ends.
_CLOSED: dict[str, Any] = {}

#: Asks the server whether the kernel behind a dropped websocket still exists: ``None``
#: if it does, else why not ("the kernel is gone", "the server stopped", ...).
KernelCheck = Callable[[], Awaitable[str | None]]


class KernelSocket:
    """The websocket to one kernel: messages in per channel, out with the right framing."""

    #: The framings offered, best first; the server picks one (none: legacy JSON).
    subprotocols: tuple[str, ...] = (V1_PROTOCOL,)

    def __init__(self, url: str, headers: dict[str, str], check: KernelCheck) -> None:
        self.url = url
        self.headers = headers
        self.check = check
        self.queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        #: Why the kernel can no longer run code; ``None`` while it can.
        self.lost: str | None = None
        #: Output the server dropped to keep under its iopub rate limit.
        self.rate_limited = False
        #: The framing the server picked, read once the websocket is open: tornado's
        #: ``selected_subprotocol`` fails an assertion on a closed websocket.
        self.protocol = "legacy"
        self._ws: WebSocketClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        #: Messages sent while a dropped websocket is being reopened, to send once it is.
        self._held: list[tuple[str, dict[str, Any]]] | None = None

    async def connect(self, timeout: float) -> None:
        self.queues = {name: asyncio.Queue() for name in CHANNELS}
        self._ws = await self._open(timeout)
        self._reader = asyncio.ensure_future(self._read())

    async def _open(self, timeout: float) -> WebSocketClientConnection:
        request = HTTPRequest(
            self.url, headers=self.headers, connect_timeout=timeout, request_timeout=timeout
        )
        ws = await websocket_connect(
            request,
            subprotocols=list(self.subprotocols),
            max_message_size=MAX_MESSAGE_BYTES,
            ping_interval=PING_INTERVAL_S,
        )
        self.protocol = "v1" if ws.selected_subprotocol else "legacy"
        return ws

    def send(self, channel: str, msg: dict[str, Any]) -> None:
        if self.lost is not None or self._ws is None:
            return  # nbclient notices through is_alive(); raising here would hide why
        if self._held is not None:
            self._held.append((channel, msg))  # reopening: a request lost would hang its cell
            return
        frame: str | bytes = (
            encode_v1(channel, msg) if self.protocol == "v1" else encode_legacy(channel, msg)
        )
        with contextlib.suppress(WebSocketClosedError):
            self._ws.write_message(frame, binary=isinstance(frame, bytes))

    async def get(self, channel: str, timeout: float | None) -> dict[str, Any]:
        """The channel's next message; ``queue.Empty`` when none comes within ``timeout``."""
        queue = self.queues[channel]
        try:
            msg = await asyncio.wait_for(queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Empty from None
        if msg is _CLOSED:
            queue.put_nowait(msg)  # for any other reader of this channel
            raise asyncio.CancelledError  # ends a waiting reader quietly, as zmq does
        return msg

    async def close(self) -> None:
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        for queue in self.queues.values():
            queue.put_nowait(_CLOSED)
        await asyncio.sleep(0)  # let waiting readers see it

    async def _read(self) -> None:
        drops = 0
        while True:
            assert self._ws is not None
            frame = await self._ws.read_message()
            if frame is None:
                if self._closing:
                    return
                drops += 1
                if not await self._reconnect(drops):
                    return
                continue
            if isinstance(frame, bytes) and self.protocol == "v1":
                msg = _normalised(decode_v1(frame))
            else:
                msg = _normalised(decode_legacy(frame))
            self._watch(msg)
            self.queues.get(msg.get("channel") or "shell", self.queues["shell"]).put_nowait(msg)

    def _watch(self, msg: dict[str, Any]) -> None:
        if msg.get("channel") != "iopub":
            return
        content = msg["content"]
        if msg["msg_type"] == "status" and content.get("execution_state") in ("restarting", "dead"):
            self.lost = "the server reported it dead; it gives no exit status"
        elif msg["msg_type"] == "stream" and "rate exceeded" in content.get("text", ""):
            self.rate_limited = True

    async def _reconnect(self, drops: int) -> bool:
        """After a drop: reconnect if the kernel is still there, else record why it is not.
        What is sent meanwhile is held, and sent on the new websocket."""
        self._held = []
        try:
            why = await self._reopen(drops)
        finally:
            held, self._held = self._held, None
        if why is not None:
            self.lost = why
        for channel, msg in held:
            self.send(channel, msg)
        return why is None

    async def _reopen(self, drops: int) -> str | None:
        """``None`` once a new websocket is open, else why the kernel is lost."""
        reason = self._ws.close_reason if self._ws is not None else None
        if self._ws is not None:
            self._ws.close()  # already dropped: this only releases it
        why = await self.check()
        if why is not None:
            return why
        if drops > RECONNECTS:
            return f"the websocket to the kernel kept closing ({reason or 'no reason given'})"
        try:
            self._ws = await self._open(timeout=10.0)
        except (HTTPClientError, OSError, asyncio.TimeoutError) as exc:
            return f"the websocket to the kernel closed and could not reopen: {exc}"
        return None
