"""The Engine: the lifecycle that owns the broker, the channels and the connections, and the
API to publish, subscribe in-process, authenticate and revoke."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any

import msgspec

from streaming._connections import Connections
from streaming._fanout import Fanout
from streaming._revocation import CHANNEL as REVOKED
from streaming._revocation import Revocations
from streaming.auth import Authorizer, Principal
from streaming.brokers import Broker, open_broker
from streaming.channels import ChannelKind
from streaming.errors import (
    AuthenticationFailed,
    ConfigurationError,
    EngineNotRunning,
    TooManyConnections,
)
from streaming.flusher import Flusher
from streaming.lease import Lease
from streaming.limits import Limits
from streaming.local import Subscription
from streaming.protocol import CloseCode
from streaming.session import Session
from streaming.stats import Counters
from streaming.subscriber import Sink, Subscriber

log = logging.getLogger("streaming.engine")


class Engine:
    """Fans publications out to WebSocket/SSE clients and in-process subscribers.

    Use as `async with Engine(...) as engine:` (e.g. in a Starlette lifespan); serve it with the
    ASGI apps `streaming.websocket.WebSocketEndpoint(engine)` and `streaming.sse.SseEndpoint(
    engine)`, mounted where the application wants them; call `engine.publish(...)` from anywhere
    in the same event loop. With a redis:// broker, publications cross processes.
    """

    def __init__(
        self,
        broker_url: str = "memory://",
        *,
        authorizer: Authorizer,
        kind_of: Callable[[str], ChannelKind],
        limits: Limits = Limits(),  # noqa: B008 - frozen, so sharing the default is safe
        history_size: int = 1000,
        history_ttl: float = 300.0,
        revocation_ttl: float = 3600.0,
    ) -> None:
        if history_size < 1 or history_ttl <= 0 or revocation_ttl <= 0:
            raise ConfigurationError(
                "history_size, history_ttl and revocation_ttl must be positive"
            )
        self.broker_url = broker_url
        self.authorizer = authorizer
        self.kind_of = kind_of
        self.limits = limits
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.counters = Counters()
        self._encoder = msgspec.json.Encoder()
        self._broker: Broker | None = None
        self._fanout = Fanout(self.counters, self._kind, limits.subscribe_timeout)
        self._connections = Connections(limits, self.counters)
        self._locals: set[Subscription] = set()
        self._flusher: Flusher | None = None
        #: Revoked sessions (see `revoke`); remember them as long as their access tokens live.
        self._revocations = Revocations(revocation_ttl, self._connections.end_revoked)

    # --- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        broker = open_broker(
            self.broker_url, history_size=self.history_size, history_ttl=self.history_ttl
        )
        self._flusher = Flusher(self.limits.flush_interval)
        await broker.start(self._fanout.deliver, self._fanout.resubscribed)
        self._broker = self._fanout.broker = broker
        # Live from now on; no snapshot is needed (nothing before the start matters, and a
        # revocation heard twice is harmless).
        self._fanout.follow(self._revocations, REVOKED, ChannelKind.RELIABLE)
        # Start ready (as before the control channel existed) when the broker answers in time;
        # otherwise the broker keeps trying, and `ready` says so meanwhile.
        try:
            async with asyncio.timeout(self.limits.subscribe_timeout):
                await broker.wait_active([REVOKED])
        except TimeoutError:
            log.warning("not yet following revocations: the broker did not answer in time")
        self._connections.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        broker, self._broker = self._broker, None
        self._fanout.broker = None
        # 1. Tell every client we are going away, and give the transports time to close.
        self._connections.close_all(CloseCode.GOING_AWAY, "server shutting down")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.close_timeout + 1.0):
                await self._connections.wait_closed()
        # 2. End local iterators; 3. stop heartbeats and resync tasks; 4. leave the broker.
        for subscription in list(self._locals):
            subscription.end()
        await asyncio.gather(self._connections.stop(), self._fanout.stop())
        if broker is not None:
            await broker.close()
        if self._flusher is not None:
            self._flusher.close()

    @property
    def flusher(self) -> Flusher:
        """The flush scheduler shared by this engine's WebSocket connections."""
        if self._flusher is None:
            raise EngineNotRunning("use the engine inside `async with engine:`")
        return self._flusher

    @property
    def running(self) -> bool:
        return self._broker is not None

    @property
    def ready(self) -> bool:
        """Broker connected and every channel with local subscribers subscribed upstream."""
        return self._broker is not None and self._broker.ready

    def stats(self) -> dict[str, int]:
        """Counters: connections, subscriptions, deliveries, conflated, slow_consumer_closes,
        broker_reconnects, messages_in, errors."""
        stats = self.counters.as_dict()
        stats["broker_reconnects"] = self._broker.reconnects if self._broker else 0
        return stats

    def _require_broker(self) -> Broker:
        if self._broker is None:
            raise EngineNotRunning("use the engine inside `async with engine:`")
        return self._broker

    # --- publishing -----------------------------------------------------------------------------

    async def publish(self, channel: str, type_: str, data: Any) -> int:
        """Publish `data` (anything msgspec can encode) on an internal channel; return its seq.

        The data is encoded once; every subscriber on every node receives the same bytes.
        """
        if not type_ or "\n" in type_:
            raise ValueError("publication type must be a non-empty single-line string")
        payload = self._encoder.encode(data)
        return await self._require_broker().publish(channel, self._kind(channel), type_, payload)

    async def publish_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        """Publish several (channel, type, data) in order, in one broker round trip."""
        prepared = []
        for channel, type_, data in items:
            if not type_ or "\n" in type_:
                raise ValueError("publication type must be a non-empty single-line string")
            prepared.append((channel, self._kind(channel), type_, self._encoder.encode(data)))
        await self._require_broker().publish_many(prepared)

    def _kind(self, channel: str) -> ChannelKind:
        return ChannelKind.RELIABLE if channel == REVOKED else self.kind_of(channel)

    # --- subscribing ----------------------------------------------------------------------------

    def prepare(self, sink: Sink, name: str, channel: str) -> Subscriber:
        """Register a subscriber (catching up: live publications are parked) on `channel`."""
        return self._fanout.prepare(sink, name, channel)

    async def activate(self, pending: Sequence[tuple[Subscriber, int | None]]) -> None:
        """Wait for upstream delivery, read the snapshots, and switch the subscribers to live
        (raises BrokerUnavailable if the broker does not answer within subscribe_timeout)."""
        await self._fanout.activate(pending)

    def detach(self, subscriber: Subscriber) -> None:
        """Remove a subscriber; the last one on a channel releases the upstream subscription."""
        self._fanout.detach(subscriber)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, channel: str, *, since: int | None = None, max_pending: int = 1000
    ) -> AsyncIterator[Subscription]:
        """Subscribe in-process to an internal channel (no authorization is applied).

        Yields an async iterator of `Publication`s: conflated for latest-value channels (the
        current value first), complete and in order for reliable ones (replayed from `since`).
        """
        subscription = Subscription(self.counters, max_pending)
        subscriber = self.prepare(subscription, channel, channel)
        self._locals.add(subscription)
        try:
            await self.activate([(subscriber, since)])
            yield subscription
        finally:
            self._locals.discard(subscription)
            self.detach(subscriber)

    # --- connections ----------------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        """Ask the Authorizer who `token` is (raises AuthenticationFailed, also for an expired
        token or one of a revoked session)."""
        principal = await self.authorizer.authenticate(token)
        if principal.sid is not None and principal.sid in self._revocations:
            raise AuthenticationFailed("session revoked")
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise AuthenticationFailed("access token expired")
        return principal

    def admits(self, principal: Principal) -> bool:
        """Whether a new connection of `principal` would be admitted now."""
        return self._connections.admits(principal)

    def open_session(self, session: Session[Any]) -> bool:
        """Admit a connection; False if its principal already has too many."""
        self._require_broker()
        return self._connections.open(session)

    def close_session(self, session: Session[Any]) -> None:
        """Release a connection's subscriptions and slot."""
        self._connections.close(session)

    @contextlib.asynccontextmanager
    async def lease(self, principal: Principal) -> AsyncIterator[asyncio.Future[tuple[int, str]]]:
        """Hold a connection slot for an in-process stream of `principal` (e.g. gRPC).

        It counts toward `max_connections_per_principal` together with WebSocket and SSE
        connections (raises `TooManyConnections`). The yielded future resolves with a
        (CloseCode, reason) when the stream must end: TOKEN_EXPIRED, SESSION_REVOKED, or
        GOING_AWAY when the engine stops.
        """
        session = Lease(self, principal)
        if not self.open_session(session):
            limit = self.limits.max_connections_per_principal
            raise TooManyConnections(f"at most {limit} streams per principal")
        try:
            yield session.ended
        finally:
            self.close_session(session)

    # --- revocation -----------------------------------------------------------------------------

    def is_revoked(self, sid: str) -> bool:
        """Whether login session `sid` was revoked (on any node, within `revocation_ttl`): for
        streams whose credentials the application checks itself before taking a `lease`."""
        return sid in self._revocations

    async def revoke(self, sid: str) -> None:
        """End every stream authenticated within login session `sid`, on every node, and refuse
        its tokens for new streams (for `revocation_ttl` seconds). Raises if the broker cannot
        take the message; local streams have ended by then anyway."""
        self._revocations.add(sid)
        await self.publish(REVOKED, "revoked", sid)
