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

Use it with `uvicorn.Config(app, ws=DirectWebSocketProtocol, ...)`.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
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


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio WebSocket protocol, offering `streaming.direct` writes."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # None: the handshake was refused before a scope existed
            scope["extensions"][EXTENSION] = self

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
