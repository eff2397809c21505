"""The Engine: channel registry, publish, fan-out, and the lifecycle that owns it all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any

import msgspec
from starlette.routing import Route, WebSocketRoute

from streaming.auth import Authorizer, Principal
from streaming.brokers import Broker, Snapshot, SnapshotRequest, open_broker
from streaming.channels import ChannelKind
from streaming.errors import (
    BrokerUnavailable,
    ConfigurationError,
    EngineNotRunning,
    SubscriptionLost,
)
from streaming.flusher import Flusher
from streaming.limits import Limits
from streaming.local import Subscription
from streaming.protocol import CloseCode
from streaming.publication import Publication
from streaming.session import Session
from streaming.stats import Counters
from streaming.subscriber import Sink, Subscriber

log = logging.getLogger("streaming.engine")


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
    ) -> None:
        if history_size < 1 or history_ttl <= 0:
            raise ConfigurationError("history_size and history_ttl must be positive")
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

    # --- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        broker = open_broker(
            self.broker_url, history_size=self.history_size, history_ttl=self.history_ttl
        )
        self._flusher = Flusher(self.limits.flush_interval)
        await broker.start(self._fanout, self._resubscribed)
        self._broker = broker
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
        return await self._require_broker().publish(channel, self.kind_of(channel), type_, payload)

    async def publish_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        """Publish several (channel, type, data) in order, in one broker round trip."""
        prepared = []
        for channel, type_, data in items:
            if not type_ or "\n" in type_:
                raise ValueError("publication type must be a non-empty single-line string")
            prepared.append((channel, self.kind_of(channel), type_, self._encoder.encode(data)))
        await self._require_broker().publish_many(prepared)

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
            state = self._channels[channel] = _Channel(channel, self.kind_of(channel))
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
            if subscriber.buffer is not None and snapshot is not None:  # still attached
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
        subscriber.buffer = None
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
        live = [s for s in state.subscribers if s.buffer is None]
        if not live:
            return
        for subscriber in live:
            subscriber.buffer = []
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
                if subscriber.buffer is not None:
                    subscriber.buffer = None
                    subscriber.sink.lost(subscriber, SubscriptionLost(f"resync failed: {exc}"))
            return
        for subscriber in subscribers:
            if subscriber.buffer is None:  # detached meanwhile
                continue
            behind = subscriber.last_seq < snapshot.last_seq
            if state.kind is ChannelKind.RELIABLE and not snapshot.recovered and behind:
                subscriber.buffer = None
                subscriber.sink.lost(subscriber, SubscriptionLost("history does not cover the gap"))
                continue
            subscriber.catch_up(snapshot, subscriber.last_seq, announce=False)

    # --- connections ----------------------------------------------------------------------------

    async def _beat(self) -> None:
        # One task for every connection's pings and idle timeout, instead of a task per
        # connection: idle connections then cost memory, not wake-ups.
        limits = self.limits
        tick = max(min(limits.ping_interval, limits.idle_timeout) / 4, 0.01)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for session in list(self._sessions):
                session.heartbeat(now)

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
        """Ask the Authorizer who `token` is (raises AuthenticationFailed)."""
        return await self.authorizer.authenticate(token)

    # --- transports -----------------------------------------------------------------------------

    def websocket_route(self, path: str = "/ws") -> WebSocketRoute:
        """A Starlette route serving the WebSocket protocol (see docs/protocol.md)."""
        from streaming.websocket import WebSocketEndpoint

        return WebSocketRoute(path, WebSocketEndpoint(self))

    def sse_route(self, path: str = "/sse") -> Route:
        """A Starlette route serving Server-Sent Events (see docs/protocol.md)."""
        from streaming.sse import SseEndpoint

        return Route(path, SseEndpoint(self).handle, methods=["GET"])
