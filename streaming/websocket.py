"""The WebSocket transport: a raw ASGI endpoint, thin over a WebSocketSession and its engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgspec
from starlette.types import Message, Receive, Scope, Send

from streaming._ws_session import SocketState, WebSocketSession, frame
from streaming.auth import Principal, bearer_token
from streaming.direct import EXTENSION
from streaming.errors import AuthenticationFailed
from streaming.protocol import (
    Authenticate,
    Authenticated,
    ClientAction,
    CloseCode,
    Connected,
    Error,
    ErrorCode,
    Ping,
    Pong,
    PongMessage,
    Subscribe,
    Unsubscribe,
    decode_action,
    encode_message,
)
from streaming.ratelimit import TokenBucket
from streaming.session import Host, SessionState

log = logging.getLogger("streaming.websocket")


def classify(exc: msgspec.DecodeError) -> ErrorCode:
    if isinstance(exc, msgspec.ValidationError):
        return ErrorCode.UNKNOWN_ACTION if "`$.action`" in str(exc) else ErrorCode.INVALID_MESSAGE
    return ErrorCode.MALFORMED_JSON


_INTERRUPT = "streaming: close requested"


class _Closed(Exception):
    """The peer went away (or we already closed); nothing more to send."""


class WebSocketEndpoint:
    """The ASGI app serving the WebSocket protocol (docs/protocol.md) over `engine`.

    Mount it where the application wants it, e.g. `WebSocketRoute("/ws", WebSocketEndpoint(
    engine))` in Starlette, or call it from the application's own ASGI callable.
    """

    def __init__(self, engine: Host) -> None:
        self.engine = engine
        self.limits = engine.limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if not self.engine.running:
            await send({"type": "websocket.close", "code": CloseCode.GOING_AWAY})
            return
        # Accept before authenticating so that failures carry a close code the client can read.
        await send({"type": "websocket.accept"})
        try:
            principal = await self._authenticate(scope, receive, send)
        except _Closed:
            return
        if principal is None:
            return
        direct = scope.get("extensions", {}).get(EXTENSION)
        session = WebSocketSession(self.engine, principal, send, direct)
        if not self.engine.open_session(session):
            error = Error(ErrorCode.TOO_MANY_CONNECTIONS, "too many connections for this principal")
            await self._close(send, CloseCode.TOO_MANY_CONNECTIONS, "too many connections", error)
            return
        try:
            code, reason = await self._serve(session, receive)
        finally:
            await session.stop_writer()
            self.engine.close_session(session)
        if code is not None and session.socket is not SocketState.LOST:
            # Flush what is pending (e.g. the error explaining the close) unless the client is
            # the problem, then close; both bounded by close_timeout.
            items = [] if code == CloseCode.SLOW_CONSUMER else session.outbox.drain()
            await self._close(send, code, reason, *items)

    async def _close(self, send: Send, code: int, reason: str, *items: str | Error) -> None:
        texts = [i if isinstance(i, str) else encode_message(i) for i in items]
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            async with asyncio.timeout(self.limits.close_timeout):
                if texts:
                    await send({"type": "websocket.send", "text": frame(texts)})
                await send({"type": "websocket.close", "code": code, "reason": reason})

    async def _authenticate(self, scope: Scope, receive: Receive, send: Send) -> Principal | None:
        token = bearer_token(scope.get("headers", []))
        if token is None:
            try:
                async with asyncio.timeout(self.limits.auth_timeout):
                    token = await self._first_frame_token(receive, send)
            except TimeoutError:
                error = Error(ErrorCode.AUTHENTICATION_TIMEOUT, "no auth frame in time")
                await self._close(send, CloseCode.AUTHENTICATION_TIMEOUT, "auth timeout", error)
                return None
            if token is None:
                return None
        try:
            async with asyncio.timeout(self.limits.auth_timeout):
                return await self.engine.authenticate(token)
        except (AuthenticationFailed, TimeoutError) as exc:
            error = Error(ErrorCode.AUTHENTICATION_FAILED, str(exc) or "authentication failed")
            await self._close(send, CloseCode.AUTHENTICATION_FAILED, "authentication failed", error)
            return None

    async def _first_frame_token(self, receive: Receive, send: Send) -> str | None:
        message = await receive()
        if message["type"] != "websocket.receive":
            raise _Closed
        data = _payload(message)
        if len(data) > self.limits.max_frame_bytes:
            error = Error(ErrorCode.FRAME_TOO_LARGE, "frame too large")
            await self._close(send, CloseCode.MESSAGE_TOO_BIG, "frame too large", error)
            return None
        try:
            action = decode_action(data)
        except msgspec.DecodeError:
            action = None
        if not isinstance(action, Authenticate):
            error = Error(ErrorCode.NOT_AUTHENTICATED, 'first frame must be {"action":"auth"}')
            await self._close(send, CloseCode.AUTHENTICATION_FAILED, "not authenticated", error)
            return None
        return action.token

    async def _serve(self, session: WebSocketSession, receive: Receive) -> tuple[int | None, str]:
        """Run the reader until it ends or a close is requested (heartbeats: Engine).

        The reader runs in the connection's own task rather than a task of its own (~1 KiB per
        socket, and one task creation per connect): a close request interrupts it by
        cancelling this task with a marker, and only while it is still reading.
        """
        limits = self.limits
        session.send(
            Connected(session.id, limits.ping_interval, limits.idle_timeout, session.expires_in())
        )
        task = asyncio.current_task()
        assert task is not None
        reading = True

        def interrupt(_: object) -> None:
            if reading:  # runs from the loop, so the task is suspended in the reader
                task.cancel(_INTERRUPT)

        session.close_request.add_done_callback(interrupt)
        try:
            await self._read(session, receive)
        except asyncio.CancelledError as exc:
            if exc.args != (_INTERRUPT,):
                raise  # the connection itself is being cancelled (e.g. server shutdown)
            task.uncancel()
        except (_Closed, OSError):
            pass
        except Exception:
            log.exception("websocket connection failed")
            self.engine.counters.errors += 1
            session.request_close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            reading = False
            session.close_request.remove_done_callback(interrupt)
        if session.state is SessionState.CLOSING:
            return session.close_request.result()
        return None, ""  # the client disconnected

    async def _read(self, session: WebSocketSession, receive: Receive) -> None:
        limits = self.limits
        bucket = TokenBucket(limits.inbound_rate, limits.inbound_burst)
        violations = 0
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            session.last_received = time.monotonic()
            data = _payload(message)
            if len(data) > limits.max_frame_bytes:
                session.error(
                    ErrorCode.FRAME_TOO_LARGE,
                    f"frames are limited to {limits.max_frame_bytes} bytes",
                )
                session.request_close(CloseCode.MESSAGE_TOO_BIG, "frame too large")
                return
            if not bucket.take():
                code, detail = ErrorCode.RATE_LIMITED, "too many messages, slow down"
            else:
                try:
                    action = decode_action(data)
                except msgspec.DecodeError as exc:
                    code, detail = classify(exc), str(exc)
                else:
                    await self._dispatch(session, action)
                    continue
            violations += 1
            session.error(code, detail)
            if violations > limits.max_violations:
                session.error(ErrorCode.POLICY_VIOLATION, "too many protocol errors")
                session.request_close(CloseCode.POLICY_VIOLATION, "policy violation")
                return

    async def _dispatch(self, session: WebSocketSession, action: ClientAction) -> None:
        try:
            match action:
                case Subscribe(channels=channels, since=since):
                    await session.subscribe(channels, since)
                case Unsubscribe(channels=channels):
                    session.unsubscribe(channels)
                case Ping():
                    session.send(PongMessage())
                case Pong():
                    pass
                case Authenticate(token=token):
                    await self._renew(session, token)
        except Exception:
            # One bad action (e.g. an Authorizer bug) must not take the connection down.
            log.exception("failed to handle %s", type(action).__name__)
            session.error(ErrorCode.INTERNAL, "internal error")

    async def _renew(self, session: WebSocketSession, token: str) -> None:
        """A later `auth`: a valid token of the same principal replaces the connection's
        credentials (new expiry, new sid); subscriptions stay. Anything else is an error and the
        connection keeps its credentials, so it still ends when they expire."""
        try:
            async with asyncio.timeout(self.limits.auth_timeout):
                principal = await self.engine.authenticate(token)
        except (AuthenticationFailed, TimeoutError) as exc:
            session.error(ErrorCode.AUTHENTICATION_FAILED, str(exc) or "authentication failed")
            return
        if principal.id != session.principal.id:
            session.error(ErrorCode.AUTHENTICATION_FAILED, "the token is for another principal")
            return
        session.principal = principal
        session.send(Authenticated(session.expires_in()))


def _payload(message: Message | dict[str, Any]) -> str | bytes:
    text = message.get("text")
    if text is not None:
        return str(text)
    data = message.get("bytes")
    return bytes(data) if data is not None else b""
