"""The node's channels: each one's local subscribers, how a subscriber joins a channel without a
gap, and how live subscribers catch up again after a broker reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence

from streaming.brokers.base import Broker, Snapshot, SnapshotRequest
from streaming.channels import ChannelKind
from streaming.errors import BrokerUnavailable, EngineNotRunning, SubscriptionLost
from streaming.publication import Publication
from streaming.stats import Counters
from streaming.subscriber import Sink, Subscriber, SubscriberState

_CATCHING_UP = SubscriberState.CATCHING_UP

#: `_Channel.known_seq` while this node does not know the channel's state: below every seq, so
#: that the newest of it and a seq read later is simply their max().
UNKNOWN = -1


class _Channel:
    """Local subscribers of one internal channel (the node-level reference count)."""

    __slots__ = (
        "generation",
        "kind",
        "known_seq",
        "latest",
        "name",
        "resyncing",
        "snapshot",
        "subscribers",
    )

    def __init__(self, name: str, kind: ChannelKind) -> None:
        self.name = name
        self.kind = kind
        self.subscribers: dict[Subscriber, None] = {}
        #: LATEST channels: the channel's state as this node has seen it while subscribed
        #: upstream (its seq, and its newest publication if it has one), so that the next
        #: subscriber's snapshot needs no broker round trip. UNKNOWN for a new channel, or when
        #: live delivery was re-established and may have missed something.
        self.known_seq = UNKNOWN
        self.latest: Publication | None = None
        #: That state as a Snapshot, built once and shared until the state changes.
        self.snapshot: Snapshot | None = None
        #: How many times live delivery was re-established: a snapshot read while it changed
        #: may predate a new gap, and is read again.
        self.generation = 0
        #: Subscribers that lost live delivery and wait for the channel's resync task (one at a
        #: time per channel; it exists while this is not empty).
        self.resyncing: dict[Subscriber, None] = {}


class Fanout:
    """Delivers every publication that reaches the node to the subscribers of its channel, and
    asks the broker for exactly the channels that have local subscribers.

    The engine sets `broker` while it runs; without one, subscribing raises EngineNotRunning.
    """

    def __init__(
        self, counters: Counters, kind_of: Callable[[str], ChannelKind], timeout: float
    ) -> None:
        self.broker: Broker | None = None
        self._counters = counters
        self._kind_of = kind_of
        #: Seconds a snapshot read may take (Limits.subscribe_timeout).
        self._timeout = timeout
        self._channels: dict[str, _Channel] = {}
        #: Resync tasks after a broker reconnect.
        self._tasks: set[asyncio.Task[None]] = set()

    def __iter__(self) -> Iterator[str]:
        """The channels that have local subscribers."""
        return iter(self._channels)

    def _require_broker(self) -> Broker:
        if self.broker is None:
            raise EngineNotRunning("use the engine inside `async with engine:`")
        return self.broker

    # --- from the broker ------------------------------------------------------------------------

    def deliver(self, publication: Publication) -> None:
        """The broker's OnPublication: hand `publication` to its channel's subscribers."""
        self._counters.messages_in += 1
        channel = self._channels.get(publication.channel)
        if channel is None:
            return
        if channel.kind is ChannelKind.LATEST:
            latest = channel.latest
            if latest is None or publication.seq > latest.seq:
                channel.latest, channel.snapshot = publication, None
                if channel.known_seq != UNKNOWN:  # a state read earlier stays current
                    channel.known_seq = publication.seq
        # A snapshot of the subscribers: delivery never detaches, but stay safe if a sink does.
        for subscriber in tuple(channel.subscribers):
            subscriber.offer(publication)

    def resubscribed(self, channel: str) -> None:
        """The broker's OnResubscribed: live delivery was re-established after a reconnect, and
        publications may have been missed in between, so live subscribers catch up from their
        last seq."""
        state = self._channels.get(channel)
        if state is None:
            return
        state.generation += 1
        # Maybe stale: the next subscriber's snapshot comes from the broker.
        state.known_seq, state.latest, state.snapshot = UNKNOWN, None, None
        live = [s for s in state.subscribers if s.state is SubscriberState.LIVE]
        running = bool(state.resyncing)  # its task sees the new generation and reads again
        for subscriber in live:
            subscriber.restart_catch_up()
            state.resyncing[subscriber] = None
        if live and not running:
            task = asyncio.create_task(self._resync(state), name=f"streaming-resync-{channel}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- subscribing ----------------------------------------------------------------------------

    def prepare(self, sink: Sink, name: str, channel: str) -> Subscriber:
        """Register a subscriber (catching up: live publications are parked) on `channel`."""
        broker = self._require_broker()
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(channel, self._kind_of(channel))
            broker.want(channel, state.kind)
        subscriber = Subscriber(sink, name, channel, state.kind)
        state.subscribers[subscriber] = None
        self._counters.subscriptions += 1
        return subscriber

    def follow(self, sink: Sink, channel: str, kind: ChannelKind) -> None:
        """Deliver `channel` to `sink` live from now on, without a snapshot, for as long as the
        engine runs (its own control channel). Not counted as a subscription in the stats."""
        broker = self._require_broker()
        state = self._channels[channel] = _Channel(channel, kind)
        subscriber = Subscriber(sink, channel, channel, kind)
        subscriber.go_live()
        state.subscribers[subscriber] = None
        broker.want(channel, kind)

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
                async with asyncio.timeout(self._timeout):
                    while True:
                        await broker.wait_active(channels)
                        generations = self._generations(channels)
                        snapshots = [self._known(channel) for channel in channels]
                        asked = [i for i, snapshot in enumerate(snapshots) if snapshot is None]
                        requests = [
                            SnapshotRequest(channels[i], pending[i][0].kind, pending[i][1])
                            for i in asked
                        ]
                        fresh = await broker.snapshots(requests)
                        if self._generations(channels) == generations:
                            break  # else live delivery broke meanwhile: read after it is back
                    for i, read in zip(asked, fresh, strict=True):
                        snapshots[i] = read
                        self._remember(channels[i], read)
            except TimeoutError as exc:
                raise BrokerUnavailable("broker did not answer in time") from exc
        for (subscriber, since), snapshot in zip(pending, snapshots, strict=True):
            if subscriber.state is SubscriberState.CATCHING_UP and snapshot is not None:
                subscriber.catch_up(snapshot, since, announce=True)

    def detach(self, subscriber: Subscriber) -> None:
        """Remove a subscriber; the last one on a channel releases the upstream subscription."""
        state = self._channels.get(subscriber.channel)
        if state is None or subscriber not in state.subscribers:
            return
        del state.subscribers[subscriber]
        subscriber.stop()
        self._counters.subscriptions -= 1
        if not state.subscribers:
            del self._channels[subscriber.channel]
            if self.broker is not None:
                self.broker.unwant(subscriber.channel)

    async def stop(self) -> None:
        """Cancel and await the resync tasks."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- what this node knows of a channel ------------------------------------------------------

    def _known(self, channel: str) -> Snapshot | None:
        state = self._channels.get(channel)
        if state is None or state.known_seq == UNKNOWN:
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

    def _generations(self, channels: Sequence[str]) -> list[int]:
        return [state.generation if (state := self._channels.get(c)) else 0 for c in channels]

    async def _resync(self, state: _Channel) -> None:
        """Catch `state.resyncing` up from a snapshot read after live delivery came back (read
        again if it broke once more meanwhile)."""
        try:
            while True:
                generation = state.generation
                subscribers = [s for s in state.resyncing if s.state is _CATCHING_UP]
                if not subscribers:
                    return
                reliable = state.kind is ChannelKind.RELIABLE
                since = min(s.last_seq for s in subscribers) if reliable else None
                try:
                    async with asyncio.timeout(self._timeout):
                        [snapshot] = await self._require_broker().snapshots(
                            [SnapshotRequest(state.name, state.kind, since)]
                        )
                except (BrokerUnavailable, EngineNotRunning, TimeoutError) as exc:
                    for subscriber in subscribers:
                        if subscriber.state is SubscriberState.CATCHING_UP:
                            subscriber.stop()
                            subscriber.sink.lost(
                                subscriber, SubscriptionLost(f"resync failed: {exc}")
                            )
                    return
                if state.generation == generation:
                    break
            self._remember(state.name, snapshot)
            for subscriber in subscribers:
                self._catch_up(state, subscriber, snapshot)
        finally:
            state.resyncing.clear()

    def _catch_up(self, state: _Channel, subscriber: Subscriber, snapshot: Snapshot) -> None:
        if subscriber.state is not SubscriberState.CATCHING_UP:  # detached meanwhile
            return
        if subscriber.last_seq > snapshot.last_seq:
            # The channel went back: the broker lost writes this subscriber had seen (a master
            # failed before its replica had them, or a Redis restarted empty), and will hand
            # their seqs out again. Say so rather than skip the new ones.
            subscriber.stop()
            subscriber.sink.lost(subscriber, SubscriptionLost("the channel's seq went back"))
            return
        behind = subscriber.last_seq < snapshot.last_seq
        if state.kind is ChannelKind.RELIABLE and not snapshot.recovered and behind:
            subscriber.stop()
            subscriber.sink.lost(subscriber, SubscriptionLost("history does not cover the gap"))
            return
        subscriber.catch_up(snapshot, subscriber.last_seq, announce=False)
