"""The Server-Sent Events transport (sse-starlette), thin over a Session and its engine.

`event:` is the message type; `id:` (on reliable publications and `subscribed` messages) is a
compact JSON object mapping every reliable channel of the stream to the last seq sent, so the
browser's automatic `Last-Event-ID` on reconnect resumes all of them at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from http import HTTPStatus
from typing import NamedTuple

import msgspec
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from streaming.auth import Principal, bearer_token
from streaming.channels import ChannelKind
from streaming.errors import AuthenticationFailed
from streaming.protocol import CloseCode, Connected, ServerMessage, Subscribed, encode_message
from streaming.publication import Publication
from streaming.session import Host, Session, SessionState
from streaming.subscriber import Subscriber

_positions = msgspec.json.Decoder(dict[str, int])
_encoder = msgspec.json.Encoder()


class _Event(NamedTuple):
    event: str
    id: str | None
    data: str


class SseSession(Session[_Event]):
    """Items are (event, id, data) triples; `positions` backs the resumable `id:`."""

    def __init__(self, engine: Host, principal: Principal) -> None:
        super().__init__(engine, principal)
        self.positions: dict[str, int] = {}

    def _position_id(self, channel: str, seq: int) -> str:
        self.positions[channel] = seq
        return _encoder.encode(self.positions).decode()

    def render(self, subscriber: Subscriber, publication: Publication) -> tuple[_Event, int]:
        text = publication.render(subscriber.name)
        event_id = None
        if subscriber.kind is ChannelKind.RELIABLE:
            event_id = self._position_id(subscriber.name, publication.seq)
        return _Event(publication.type, event_id, text), len(text)

    def render_message(self, message: ServerMessage) -> tuple[_Event, int]:
        text = encode_message(message)
        event_id = None
        if isinstance(message, Subscribed) and message.kind == ChannelKind.RELIABLE.value:
            event_id = self._position_id(message.channel, message.seq)
        tag = type(message).__struct_config__.tag
        return _Event(str(tag), event_id, text), len(text)


def parse_last_event_id(value: str | None) -> dict[str, int]:
    """The `since` map carried by Last-Event-ID (anything unparsable means: nothing to resume)."""
    if not value:
        return {}
    try:
        positions = _positions.decode(value)
    except msgspec.DecodeError:
        return {}
    return {channel: seq for channel, seq in positions.items() if seq >= 0}


#: Renders an error answered before a stream starts: (status, code, detail, headers) -> an
#: RFC 9457 problem response. The application may supply its own (see SseEndpoint).
ProblemRenderer = Callable[[int, str, str, Mapping[str, str]], Response]


def problem(status: int, code: str, detail: str, headers: Mapping[str, str]) -> Response:
    """The default ProblemRenderer: RFC 9457 with `type` about:blank, plus a stable `code`."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    return Response(
        _encoder.encode(body), status, headers=dict(headers), media_type="application/problem+json"
    )


_STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class _SessionResponse(EventSourceResponse):
    """Releases the session's connection slot however the response ends: also when the body
    never starts (HEAD, a client gone before the first byte), where the stream's own `finally`
    never runs because the generator was never iterated."""

    def __init__(self, session: SseSession, content: AsyncIterator[ServerSentEvent]) -> None:
        limits = session.engine.limits
        super().__init__(content, ping=limits.ping_interval, headers=_STREAM_HEADERS)
        self.session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.session.engine.close_session(self.session)


class SseEndpoint:
    """The ASGI app serving Server-Sent Events (docs/protocol.md) over `engine`:
    GET ?channels=a,b[&access_token=...].

    Mount it for GET (and so HEAD), e.g. `Route("/sse", SseEndpoint(engine), methods=["GET"])`
    in Starlette. HEAD gets the status and headers a GET would get now, without a body and
    without taking a connection slot. `problem` renders the errors answered before a stream
    starts (401, 400, 429, 503) as the application's problem responses; by default a generic
    RFC 9457 body.
    """

    def __init__(self, engine: Host, problem: ProblemRenderer = problem) -> None:
        self.engine = engine
        self._problem = problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive, send))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        engine = self.engine
        problem = self._problem
        if not engine.running:
            return problem(503, "unavailable", "streaming engine is not running", {})
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()]
        token = bearer_token(headers) or request.query_params.get("access_token")
        if not token:
            detail = "a bearer token is required (Authorization header or access_token)"
            return problem(401, "not_authenticated", detail, {"WWW-Authenticate": "Bearer"})
        try:
            principal = await engine.authenticate(token)
        except AuthenticationFailed as exc:
            challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            return problem(401, "authentication_failed", str(exc) or "invalid token", challenge)
        channels = [c for c in request.query_params.get("channels", "").split(",") if c]
        if not channels:
            detail = "the channels query parameter is required"
            return problem(400, "invalid_message", detail, {})
        if request.method == "HEAD":
            if not engine.admits(principal):
                return self._too_many()
            return Response(
                status_code=200, media_type="text/event-stream", headers=_STREAM_HEADERS
            )
        last_event_id = request.headers.get("last-event-id") or request.query_params.get(
            "last_event_id"
        )
        since = parse_last_event_id(last_event_id)
        session = SseSession(engine, principal)
        if not engine.open_session(session):
            return self._too_many()
        return _SessionResponse(session, self._stream(session, channels, since))

    def _too_many(self) -> Response:
        limit = self.engine.limits.max_connections_per_principal
        detail = f"at most {limit} streams per user on this server (WebSocket, SSE and gRPC)"
        return self._problem(429, "too_many_connections", detail, {})

    async def _stream(
        self, session: SseSession, channels: list[str], since: dict[str, int]
    ) -> AsyncIterator[ServerSentEvent]:
        limits = self.engine.limits
        try:
            connected = Connected(
                session.id, limits.ping_interval, limits.idle_timeout, session.expires_in()
            )
            session.send(connected)
            await session.subscribe(channels, since)
            while session.state is SessionState.OPEN:
                for item in await session.next_batch():
                    yield ServerSentEvent(data=item.data, event=item.event, id=item.id)
            code, _ = session.close_request.result()
            if code != CloseCode.SLOW_CONSUMER:
                # What is still pending, e.g. the `error` that says why the stream ends.
                for item in session.outbox.drain():
                    yield ServerSentEvent(data=item.data, event=item.event, id=item.id)
        finally:
            self.engine.close_session(session)
