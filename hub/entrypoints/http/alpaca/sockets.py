"""What Alpaca's two streams (/stream and /v2/iex, /v2/sip) share: credentials checked as the
/v2 routes check them, one frame at a time on the socket, and a close that never raises.

Both streams hold one of the engine's connection slots (`Engine.lease`): they count toward the
per-user limit with /ws, /sse and gRPC streams, and end when the key (or the access token's
login session) is revoked, when their credentials expire, or when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from hub.bootstrap import Container
from hub.domain.errors import InvalidToken, RateLimited
from hub.entrypoints.http.alpaca.auth import KEY_ID, SECRET
from hub.services.ports import AccessClaims
from streaming import CloseCode

log = structlog.get_logger("hub.alpaca.streams")


async def check(
    hub: Container,
    websocket: WebSocket,
    *,
    key_id: str | None = None,
    secret: str | None = None,
    token: str | None = None,
) -> AccessClaims | None:
    """The caller's claims for an API key or an access token; None when they are refused (also
    when the address has failed too many key checks, or the key was revoked on any node)."""
    try:
        if token:
            claims = hub.auth.authenticate(token)
        elif key_id and secret:
            client = websocket.client.host if websocket.client else None
            claims = await hub.api_keys.authenticate(key_id.strip(), secret.strip(), client)
        else:
            return None
    except (InvalidToken, RateLimited):
        return None
    # Another node's cache may still hold a key revoked a moment ago; the engine heard of it.
    if claims.sid is not None and hub.engine.is_revoked(claims.sid):
        return None
    return claims


def header_credentials(websocket: WebSocket) -> tuple[str, str] | None:
    """Alpaca's key headers on the upgrade request, when both are there."""
    key_id, secret = websocket.headers.get(KEY_ID), websocket.headers.get(SECRET)
    return (key_id, secret) if key_id and secret else None


async def receive(websocket: WebSocket) -> bytes | str | None:
    """The next message's payload; None once the client has gone."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    payload: bytes | str | None = message.get("bytes")
    if payload is None:
        payload = message.get("text", "")
    return payload


class Sender:
    """Writes whole frames, one at a time: a reader's replies and a pump's events share it."""

    def __init__(self, websocket: WebSocket, *, binary: bool) -> None:
        self._websocket = websocket
        self._binary = binary
        self._lock = asyncio.Lock()
        self.gone = False

    async def send(self, payload: bytes) -> None:
        """Send one frame; a client that has gone is noted (`gone`), not raised."""
        if self.gone:
            return
        async with self._lock:
            message: dict[str, Any] = {"type": "websocket.send"}
            if self._binary:
                message["bytes"] = payload
            else:
                message["text"] = payload.decode()
            try:
                await self._websocket.send(message)
            except (WebSocketDisconnect, OSError, RuntimeError):
                self.gone = True


def watch(task: asyncio.Task[None], finish: Callable[[int, str], None]) -> asyncio.Task[None]:
    """End the connection (1011) if `task` fails: a connection whose reader or pump died of a bug
    must close (the client reconnects), not hang on without it."""

    def done(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("alpaca stream task failed", task=task.get_name(), exc_info=task.exception())
        finish(CloseCode.INTERNAL_ERROR, "internal error")

    task.add_done_callback(done)
    return task


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait until they have ended. asyncio.wait, not gather: if the caller
    is cancelled meanwhile, its own CancelledError (the server's, say) is the one it raises,
    not one of the tasks' (the server could not tell it from a crash)."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


async def close(websocket: WebSocket, code: int = 1000, reason: str = "") -> None:
    """Close unless the client already went; never raises."""
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
        await websocket.close(code, reason)
