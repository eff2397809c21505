"""Direct frame writes under uvicorn: a fan-out frame is encoded once and written to each socket.

Through ASGI, every `websocket.send` re-frames the same text per connection: uvicorn awaits a
writability event, encodes the string, and websockets builds and serialises a Frame object
before `transport.write`. At 1,000 subscribers per publication that was half of the process's
time. Without permessage-deflate, a server's text frame is the same bytes for every client
(server frames are not masked), so it can be built once per publication and written as is.

`DirectWebSocketProtocol` is uvicorn's websockets-sansio protocol plus one ASGI scope
extension, `"streaming.direct"`: an object with `write(frame) -> bool` that writes a prebuilt
frame when the connection is open, uncompressed and not paused by TCP backpressure, and
otherwise returns False so that the caller takes the ordinary ASGI path (which waits, compresses
or raises as uvicorn decides). Under any other server the extension is absent and nothing changes.

It also trims what an idle connection keeps (see `_Inbox`, `_Flag` and `send`), since a node
holds tens of thousands of them.

Use it with `uvicorn.Config(app, ws=DirectWebSocketProtocol, ...)`.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol as SansIOProtocol
from websockets.protocol import State

EXTENSION = "streaming.direct"


class DirectWriter(Protocol):
    def write(self, frame: bytes) -> bool: ...


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (RFC 6455 section 5.2) around `payload`."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class _Inbox:
    """The connection's receive queue: what uvicorn uses of asyncio.Queue (put_nowait, get,
    empty) for its one consumer. asyncio.Queue allocates three deques and an Event, ~3 KiB per
    connection; uvicorn pauses reading after each message, so this list holds one or two."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class _Flag:
    """uvicorn's `writable` (set, clear, is_set, wait) without asyncio.Event's deque (~0.7 KiB
    per connection); it is cleared only while TCP pushes back."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return True


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio WebSocket protocol, offering `streaming.direct` writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: Any = _Inbox()
        self.writable: Any = _Flag()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake's request and response (parsed headers) are not needed again.
            self.request = self.response = None  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is None:  # the handshake was refused before a scope existed
            return
        scope["extensions"][EXTENSION] = self
        conn = self.conn
        if not conn.reader.buffer:
            # websockets' handshake parser is still suspended inside its frame loop, and its
            # frame keeps the parsed request (~2 KiB of headers) alive for the connection's
            # whole life. A client sends no frame before the 101 response, so nothing is
            # buffered yet and the frame loop can restart without it, as websockets itself
            # swaps parsers (parse -> discard) when a connection closes.
            parser = SansIOProtocol.parse(conn)
            next(parser)  # runs to its first wait for data
            conn.parser = parser

    def write(self, frame: bytes) -> bool:
        if (
            self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.conn.extensions  # permessage-deflate: every frame is per connection
        ):
            return False
        self.transport.write(frame)
        return True
