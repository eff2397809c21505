"""The Engine: channel registry, publish, fan-out, and the lifecycle that owns it all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.routing import Route, WebSocketRoute

from streaming._revocation import CHANNEL as REVOKED
from streaming._revocation import Revocations
from streaming.auth import Authorizer, Principal
from streaming.brokers import Broker, Snapshot, SnapshotRequest, open_broker
from streaming.channels import ChannelKind
from streaming.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    ConfigurationError,
    EngineNotRunning,
    SubscriptionLost,
    TooManyConnections,
)
from streaming.flusher import Flusher
from streaming.lease import Lease
from streaming.limits import Limits
from streaming.local import Subscription
from streaming.protocol import CloseCode, ErrorCode
from streaming.publication import Publication
from streaming.session import Session
from streaming.stats import Counters
from streaming.subscriber import Sink, Subscriber, SubscriberState

if TYPE_CHECKING:
    from streaming.sse import ProblemRenderer

log = logging.getLogger("streaming.engine")

#: Seconds between token-expiry checks (JWT `exp` has a resolution of one second anyway).
EXPIRY_CHECK_INTERVAL = 1.0


class _Channel:
    """Local subscribers of one internal channel (the node-level reference count)."""

    __slots__ = ("kind", "known_seq", "latest", "name", "snapshot", "subscribers")

    def __init__(self, name: str, kind: ChannelKind) -> None:
        self.name = name
        self.kind = kind
        self.subscribers: dict[Subscriber, None] = {}
        #: LATEST channels: the channel's state as this node has seen it while subscribed
        #: upstream (its seq, and its newest publication if it has one), so that the next
        #: subscriber's snapshot needs no broker round trip. known_seq is -1 when unknown (new
        #: channel, or live delivery was re-established and may have missed something).
        self.known_seq = -1
        self.latest: Publication | None = None
        #: That state as a Snapshot, built once and shared until the state changes.
        self.snapshot: Snapshot | None = None


class Engine:
    """Fans publications out to WebSocket/SSE clients and in-process subscribers.

    Use as `async with Engine(...) as engine:` (e.g. in a Starlette lifespan); mount
    `engine.websocket_route()` and `engine.sse_route()`; call `engine.publish(...)` from anywhere
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
        self._channels: dict[str, _Channel] = {}
        self._sessions: set[Session[Any]] = set()
        self._per_principal: dict[str, int] = {}
        self._locals: set[Subscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions_gone = asyncio.Event()
        self._flusher: Flusher | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        #: Revoked sessions (see `revoke`); remember them as long as their access tokens live.
        self._revocations = Revocations(revocation_ttl, self._end_revoked)

    # --- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        broker = open_broker(
            self.broker_url, history_size=self.history_size, history_ttl=self.history_ttl
        )
        self._flusher = Flusher(self.limits.flush_interval)
        await broker.start(self._fanout, self._resubscribed)
        self._broker = broker
        self._follow_revocations(broker)
        # Start ready (as before the control channel existed) when the broker answers in time;
        # otherwise the broker keeps trying, and `ready` says so meanwhile.
        try:
            async with asyncio.timeout(self.limits.subscribe_timeout):
                await broker.wait_active([REVOKED])
        except TimeoutError:
            log.warning("not yet following revocations: the broker did not answer in time")
        self._heartbeat = asyncio.create_task(self._beat(), name="streaming-heartbeat")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        broker, self._broker = self._broker, None
        # 1. Tell every client we are going away, and give the transports time to close.
        for session in list(self._sessions):
            session.request_close(CloseCode.GOING_AWAY, "server shutting down")
        if self._sessions:
            self._sessions_gone.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.limits.close_timeout + 1.0):
                    await self._sessions_gone.wait()
        # 2. End local iterators; 3. stop heartbeats and resync tasks; 4. leave the broker.
        for subscription in list(self._locals):
            subscription.end()
        tasks = [*self._tasks, *([self._heartbeat] if self._heartbeat else [])]
        self._heartbeat = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
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

    def _fanout(self, publication: Publication) -> None:
        self.counters.messages_in += 1
        channel = self._channels.get(publication.channel)
        if channel is None:
            return
        if channel.kind is ChannelKind.LATEST:
            latest = channel.latest
            if latest is None or publication.seq > latest.seq:
                channel.latest, channel.snapshot = publication, None
                if channel.known_seq >= 0:  # a state read earlier stays current
                    channel.known_seq = publication.seq
        # A snapshot of the subscribers: delivery never detaches, but stay safe if a sink does.
        for subscriber in tuple(channel.subscribers):
            subscriber.offer(publication)

    # --- subscribing ----------------------------------------------------------------------------

    def prepare(self, sink: Sink, name: str, channel: str) -> Subscriber:
        """Register a subscriber (catching up: live publications are parked) on `channel`."""
        broker = self._require_broker()
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(channel, self._kind(channel))
            broker.want(channel, state.kind)
        subscriber = Subscriber(sink, name, channel, state.kind)
        state.subscribers[subscriber] = None
        self.counters.subscriptions += 1
        return subscriber

    async def activate(self, pending: Sequence[tuple[Subscriber, int | None]]) -> None:
        """Wait for upstream delivery, read the snapshots, and switch the subscribers to live.

        The order — live delivery first (parked), then the snapshot, then the parked messages
        filtered by seq — is what guarantees no publication is lost or duplicated in between.
        """
        broker = self._require_broker()
        channels = [s.channel for s, _ in pending]
        # Live delivery is up, so a state this node saw on it is current: serve those from
        # memory. When that covers every channel (a busy node), subscribing never waits.
        snapshots: list[Snapshot | None] = []
        if broker.active(channels):
            snapshots = [self._known(channel) for channel in channels]
        if not snapshots or None in snapshots:
            try:
                async with asyncio.timeout(self.limits.subscribe_timeout):
                    await broker.wait_active(channels)
                    snapshots = [self._known(channel) for channel in channels]
                    asked = [i for i, snapshot in enumerate(snapshots) if snapshot is None]
                    requests = [
                        SnapshotRequest(channels[i], pending[i][0].kind, pending[i][1])
                        for i in asked
                    ]
                    for i, fresh in zip(asked, await broker.snapshots(requests), strict=True):
                        snapshots[i] = fresh
                        self._remember(channels[i], fresh)
            except TimeoutError as exc:
                raise BrokerUnavailable("broker did not answer in time") from exc
        for (subscriber, since), snapshot in zip(pending, snapshots, strict=True):
            if subscriber.state is SubscriberState.CATCHING_UP and snapshot is not None:
                subscriber.catch_up(snapshot, since, announce=True)

    def _known(self, channel: str) -> Snapshot | None:
        state = self._channels.get(channel)
        if state is None or state.known_seq < 0:
            return None
        if state.snapshot is None:
            latest = state.latest
            state.snapshot = Snapshot(state.known_seq, [latest] if latest else [], recovered=True)
        return state.snapshot

    def _remember(self, channel: str, snapshot: Snapshot) -> None:
        state = self._channels.get(channel)
        if state is None or state.kind is not ChannelKind.LATEST:
            return
        # Live delivery may have overtaken the read: keep whichever is newer.
        newest = snapshot.publications[-1] if snapshot.publications else None
        if newest is not None and (state.latest is None or newest.seq > state.latest.seq):
            state.latest = newest
        seen = state.latest.seq if state.latest is not None else 0
        state.known_seq = max(state.known_seq, snapshot.last_seq, seen)
        state.snapshot = None

    def detach(self, subscriber: Subscriber) -> None:
        """Remove a subscriber; the last one on a channel releases the upstream subscription."""
        state = self._channels.get(subscriber.channel)
        if state is None or subscriber not in state.subscribers:
            return
        del state.subscribers[subscriber]
        subscriber.stop()
        self.counters.subscriptions -= 1
        if not state.subscribers:
            del self._channels[subscriber.channel]
            if self._broker is not None:
                self._broker.unwant(subscriber.channel)

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

    def _resubscribed(self, channel: str) -> None:
        # The broker re-established live delivery after a reconnect: publications may have been
        # missed in between, so live subscribers catch up from their last seq.
        state = self._channels.get(channel)
        if state is None:
            return
        # Maybe stale: the next subscriber's snapshot comes from the broker.
        state.known_seq, state.latest, state.snapshot = -1, None, None
        live = [s for s in state.subscribers if s.state is SubscriberState.LIVE]
        if not live:
            return
        for subscriber in live:
            subscriber.restart_catch_up()
        task = asyncio.create_task(self._resync(state, live), name=f"streaming-resync-{channel}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resync(self, state: _Channel, subscribers: list[Subscriber]) -> None:
        since = min(s.last_seq for s in subscribers) if state.kind is ChannelKind.RELIABLE else None
        try:
            async with asyncio.timeout(self.limits.subscribe_timeout):
                [snapshot] = await self._require_broker().snapshots(
                    [SnapshotRequest(state.name, state.kind, since)]
                )
                self._remember(state.name, snapshot)
        except (BrokerUnavailable, EngineNotRunning, TimeoutError) as exc:
            for subscriber in subscribers:
                if subscriber.state is SubscriberState.CATCHING_UP:
                    subscriber.stop()
                    subscriber.sink.lost(subscriber, SubscriptionLost(f"resync failed: {exc}"))
            return
        for subscriber in subscribers:
            if subscriber.state is not SubscriberState.CATCHING_UP:  # detached meanwhile
                continue
            behind = subscriber.last_seq < snapshot.last_seq
            if state.kind is ChannelKind.RELIABLE and not snapshot.recovered and behind:
                subscriber.stop()
                subscriber.sink.lost(subscriber, SubscriptionLost("history does not cover the gap"))
                continue
            subscriber.catch_up(snapshot, subscriber.last_seq, announce=False)

    # --- connections ----------------------------------------------------------------------------

    async def _beat(self) -> None:
        # One task for every connection's pings and idle timeout, instead of a task per
        # connection: idle connections then cost memory, not wake-ups.
        # Token expiry is checked every second (a float comparison per session, ~0.5 ms at
        # 10,000 sessions), pings and idle timeouts every `tick` (a method call per session).
        limits = self.limits
        tick = max(min(limits.ping_interval, limits.idle_timeout) / 4, 0.01)
        step = min(tick, EXPIRY_CHECK_INTERVAL)
        next_beat = time.monotonic() + tick
        while True:
            await asyncio.sleep(step)
            self._expire(time.time())
            now = time.monotonic()
            if now >= next_beat - step / 2:
                next_beat = now + tick
                for session in list(self._sessions):
                    session.heartbeat(now)

    def _expire(self, wall: float) -> None:
        expired = [
            session
            for session in self._sessions
            if (at := session.principal.expires_at) is not None
            and at <= wall
            and not session.close_request.done()
        ]
        for session in expired:
            session.end(CloseCode.TOKEN_EXPIRED, ErrorCode.TOKEN_EXPIRED, "access token expired")

    # --- revocation -----------------------------------------------------------------------------

    async def revoke(self, sid: str) -> None:
        """End every stream authenticated within login session `sid`, on every node, and refuse
        its tokens for new streams (for `revocation_ttl` seconds). Raises if the broker cannot
        take the message; local streams have ended by then anyway."""
        self._revocations.add(sid)
        await self.publish(REVOKED, "revoked", sid)

    def _follow_revocations(self, broker: Broker) -> None:
        # Live from now on; no snapshot is needed (nothing before the start matters, and a
        # revocation heard twice is harmless). Not counted as a subscription in the stats.
        state = self._channels[REVOKED] = _Channel(REVOKED, ChannelKind.RELIABLE)
        subscriber = Subscriber(self._revocations, REVOKED, REVOKED, ChannelKind.RELIABLE)
        subscriber.go_live()
        state.subscribers[subscriber] = None
        broker.want(REVOKED, ChannelKind.RELIABLE)

    def _end_revoked(self, sid: str) -> None:
        # A scan of every session: revocations (logouts) are rare next to deliveries, and an
        # index by sid would cost memory on every connection.
        revoked = [s for s in self._sessions if s.principal.sid == sid]
        for session in revoked:
            session.end(CloseCode.SESSION_REVOKED, ErrorCode.SESSION_REVOKED, "session revoked")

    def admits(self, principal: Principal) -> bool:
        """Whether a new connection of `principal` would be admitted now."""
        count = self._per_principal.get(principal.id, 0)
        return count < self.limits.max_connections_per_principal

    def open_session(self, session: Session[Any]) -> bool:
        """Admit a connection; False if its principal already has too many."""
        self._require_broker()
        key = session.principal.id
        count = self._per_principal.get(key, 0)
        if count >= self.limits.max_connections_per_principal:
            return False
        self._per_principal[key] = count + 1
        self._sessions.add(session)
        self.counters.connections += 1
        return True

    def close_session(self, session: Session[Any]) -> None:
        """Release a connection's subscriptions and slot."""
        session.release()
        if session not in self._sessions:
            return
        self._sessions.discard(session)
        self.counters.connections -= 1
        key = session.principal.id
        remaining = self._per_principal.get(key, 1) - 1
        if remaining:
            self._per_principal[key] = remaining
        else:
            self._per_principal.pop(key, None)
        if not self._sessions:
            self._sessions_gone.set()

    async def authenticate(self, token: str) -> Principal:
        """Ask the Authorizer who `token` is (raises AuthenticationFailed, also for an expired
        token or one of a revoked session)."""
        principal = await self.authorizer.authenticate(token)
        if principal.sid is not None and principal.sid in self._revocations:
            raise AuthenticationFailed("session revoked")
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise AuthenticationFailed("access token expired")
        return principal

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

    # --- transports -----------------------------------------------------------------------------

    def websocket_route(self, path: str = "/ws") -> WebSocketRoute:
        """A Starlette route serving the WebSocket protocol (see docs/protocol.md)."""
        from streaming.websocket import WebSocketEndpoint

        return WebSocketRoute(path, WebSocketEndpoint(self))

    def sse_route(self, path: str = "/sse", *, problem: ProblemRenderer | None = None) -> Route:
        """A Starlette route serving Server-Sent Events (see docs/protocol.md).

        `problem` renders the errors answered before a stream starts (401, 400, 429, 503) as
        the application's problem responses; by default a generic RFC 9457 body.
        """
        from streaming.sse import SseEndpoint
        from streaming.sse import problem as default_problem

        return Route(path, SseEndpoint(self, problem or default_problem).handle, methods=["GET"])
