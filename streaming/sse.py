"""The Server-Sent Events transport (sse-starlette), thin over Session and Engine.

`event:` is the message type; `id:` (on reliable publications and `subscribed` messages) is a
compact JSON object mapping every reliable channel of the stream to the last seq sent, so the
browser's automatic `Last-Event-ID` on reconnect resumes all of them at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, NamedTuple

import msgspec
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from streaming.auth import Principal
from streaming.channels import ChannelKind
from streaming.errors import AuthenticationFailed
from streaming.protocol import Connected, ServerMessage, Subscribed, encode_message
from streaming.publication import Publication
from streaming.session import Session
from streaming.subscriber import Subscriber
from streaming.websocket import bearer_token

if TYPE_CHECKING:
    from streaming.engine import Engine

_positions = msgspec.json.Decoder(dict[str, int])
_encoder = msgspec.json.Encoder()


class _Event(NamedTuple):
    event: str
    id: str | None
    data: str


class SseSession(Session[_Event]):
    """Items are (event, id, data) triples; `positions` backs the resumable `id:`."""

    def __init__(self, engine: Engine, principal: Principal) -> None:
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


def _problem(status: int, code: str, detail: str) -> Response:
    body = {"type": "about:blank", "title": detail, "status": status, "code": code}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class SseEndpoint:
    """GET /sse?channels=a,b[&access_token=...] (mounted via Engine.sse_route)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def handle(self, request: Request) -> Response:
        engine = self.engine
        if not engine.running:
            return _problem(503, "unavailable", "streaming engine is not running")
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()]
        token = bearer_token(headers) or request.query_params.get("access_token")
        if not token:
            return _problem(401, "not_authenticated", "bearer token required")
        try:
            principal = await engine.authenticate(token)
        except AuthenticationFailed:
            return _problem(401, "authentication_failed", "authentication failed")
        channels = [c for c in request.query_params.get("channels", "").split(",") if c]
        if not channels:
            return _problem(400, "invalid_message", "channels query parameter is required")
        last_event_id = request.headers.get("last-event-id") or request.query_params.get(
            "last_event_id"
        )
        since = parse_last_event_id(last_event_id)
        session = SseSession(engine, principal)
        if not engine.open_session(session):
            return _problem(429, "too_many_connections", "too many connections")
        return EventSourceResponse(
            self._stream(session, channels, since),
            ping=engine.limits.ping_interval,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _stream(
        self, session: SseSession, channels: list[str], since: dict[str, int]
    ) -> AsyncIterator[ServerSentEvent]:
        limits = self.engine.limits
        try:
            session.send(Connected(session.id, limits.ping_interval, limits.idle_timeout))
            await session.subscribe(channels, since)
            while not session.close_request.done():
                for item in await session.next_batch():
                    yield ServerSentEvent(data=item.data, event=item.event, id=item.id)
        finally:
            self.engine.close_session(session)
