"""A connection slot for an in-process stream (e.g. a gRPC server stream): it counts toward the
per-principal limit and ends, like a socket, when the token expires or its session is revoked."""

from __future__ import annotations

import asyncio

from streaming.protocol import ServerMessage, encode_message
from streaming.session import Session


class Lease(Session[str]):
    """A Session without a transport: nobody reads its outbox, so messages are dropped.

    The stream that holds it watches `ended` and stops when it resolves with the
    (CloseCode, reason) a WebSocket would have been closed with.
    """

    @property
    def ended(self) -> asyncio.Future[tuple[int, str]]:
        return self.close_request

    def render_message(self, message: ServerMessage) -> tuple[str, int]:
        text = encode_message(message)
        return text, len(text)

    def send(self, message: ServerMessage) -> None:
        pass
