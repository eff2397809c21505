"""A WebSocket connection in push mode: outbox frames are sent inline when the socket allows."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Coroutine
from types import CoroutineType
from typing import Any

from starlette.types import Send

from streaming import _drive
from streaming.auth import Principal
from streaming.direct import DirectWriter, text_frame
from streaming.protocol import CloseCode, PingMessage, ServerMessage, encode_message
from streaming.publication import Publication
from streaming.session import Host, Session, SessionState
from streaming.subscriber import Subscriber

log = logging.getLogger("streaming.websocket")


class SocketState(enum.Enum):
    """How the session's frames reach its socket (what the transport lets it do now)."""

    #: A flush writes to the socket inline.
    READY = "ready"
    #: The socket pushed back: a writer task owns the sending until the outbox is empty.
    BACKPRESSURED = "backpressured"
    #: A send failed, the peer is gone: nothing more is sent, not even a close frame.
    LOST = "lost"


_READY, _BACKPRESSURED, _LOST = SocketState  # module constants: `flush` is the hot path
_OPEN = SessionState.OPEN


class WebSocketSession(Session[str]):
    """Items are JSON texts; a frame is their JSON array, built by joining, never re-encoding.

    Push mode: a delivery marks the session in the engine's Flusher; the flush sends inline when
    the socket takes the frame at once, and otherwise parks a writer task on the socket until
    the outbox is empty again (`socket` says which). At most one send is in flight per
    connection.

    With a `direct` writer (see streaming.direct) a flush writes prebuilt frame bytes: a frame
    holding one publication is encoded once per flush run and shared by every connection that
    sends exactly that, which is the common case of a fan-out.
    """

    def __init__(
        self, engine: Host, principal: Principal, send: Send, direct: DirectWriter | None = None
    ) -> None:
        super().__init__(engine, principal)
        self._send = send
        self._direct = direct
        self._flusher = engine.flusher
        self._scheduled = False  # marked in the flusher
        self.socket = _READY
        self._writer: asyncio.Task[None] | None = None  # while BACKPRESSURED
        self._pinged = 0.0  # when the last ping was queued (monotonic)

    def render(self, subscriber: Subscriber, publication: Publication) -> tuple[str, int]:
        text = publication.render(subscriber.name)
        return text, len(text)

    def render_message(self, message: ServerMessage) -> tuple[str, int]:
        text = encode_message(message)
        return text, len(text)

    def _notify(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self)

    def flush(self) -> None:
        self._scheduled = False
        if self.socket is not _READY or self.state is not _OPEN:
            return  # a writer task drains everything once the socket accepts data again
        items = self.outbox.drain(self.limits.max_batch_bytes)
        if not items:
            return
        if self._direct is not None and self._direct.write(self._encoded(items)):
            self.last_sent = time.monotonic()
            if self.outbox:
                self._notify()
            return
        sending = _coroutine(self._send({"type": "websocket.send", "text": frame(items)}))
        self.last_sent = time.monotonic()
        try:
            waiting = _drive.start(sending)
        except (OSError, RuntimeError) as exc:
            self._lost(exc)
            return
        if waiting is not None:
            self.socket = _BACKPRESSURED
            self._writer = asyncio.create_task(self._write_on(sending, waiting))
        elif self.outbox:
            self._notify()  # more than one batch was pending

    def _encoded(self, items: list[str]) -> bytes:
        if len(items) != 1:
            return text_frame(frame(items).encode())
        # Every subscriber of a publication holds the same rendered string object, so the
        # memo lookup is a cached hash and an identity comparison.
        memo = self._flusher.memo
        data = memo.get(items[0])
        if data is None:
            data = memo[items[0]] = text_frame(frame(items).encode())
        return data

    async def _write_on(self, sending: Coroutine[Any, Any, None], waiting: object) -> None:
        try:
            await _drive.finish(sending, waiting)
            while self.state is _OPEN:
                items = self.outbox.drain(self.limits.max_batch_bytes)
                if not items:
                    break
                await self._send({"type": "websocket.send", "text": frame(items)})
                self.last_sent = time.monotonic()
        except (OSError, RuntimeError) as exc:
            self._lost(exc)
        finally:
            self._writer = None
            if self.socket is _BACKPRESSURED:
                self.socket = _READY

    def heartbeat(self, now: float) -> None:
        """Close an idle connection; ping one that we have heard nothing from, or that has
        heard nothing from us, for a ping interval.

        The first condition matters on a busy socket: a dashboard that only listens sends
        nothing while quotes flow, so without a ping to answer it would reach the idle timeout
        (found by benchmarks/soak.py: every socket closed 4004 after 75 s of quotes).
        """
        limits = self.limits
        interval = limits.ping_interval
        if now - self.last_received > limits.idle_timeout:
            self.request_close(CloseCode.IDLE_TIMEOUT, "idle timeout")
        elif now - self._pinged >= interval and (
            now - self.last_received >= interval
            or (now - self.last_sent >= interval and not self.outbox)
        ):
            self._pinged = now
            self.send(PingMessage())

    def _lost(self, exc: BaseException) -> None:
        log.debug("websocket send failed: %r", exc)
        self.socket = _LOST
        self.request_close(CloseCode.NORMAL, "connection lost")

    async def stop_writer(self) -> None:
        """Cancel and await the parked writer task, if any."""
        writer = self._writer
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer


def frame(items: list[str]) -> str:
    """One WebSocket text frame: a JSON array of already-encoded messages."""
    return "[" + ",".join(items) + "]"


def _coroutine(awaitable: Awaitable[None]) -> Coroutine[Any, Any, None]:
    """ASGI servers return coroutines from `send` (uvicorn does); wrap anything else."""
    if type(awaitable) is CoroutineType:  # exact check: an ABC isinstance costs more per send
        return awaitable
    if isinstance(awaitable, Coroutine):
        return awaitable

    async def wrapper() -> None:
        await awaitable

    return wrapper()
