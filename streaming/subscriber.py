"""A subscriber: one (connection, channel) pair, and how it joins a live stream without gaps."""

from __future__ import annotations

import enum
from typing import Protocol

from streaming.brokers.base import Snapshot
from streaming.channels import ChannelKind
from streaming.errors import StreamingError
from streaming.publication import Publication

#: Live publications held while a subscriber catches up; beyond this it is treated as lost.
MAX_CATCH_UP_BUFFER = 10_000


class Sink(Protocol):
    """Where a subscriber's publications go: a connection's outbox or a local iterator."""

    def deliver(self, subscriber: Subscriber, publication: Publication) -> None: ...

    def subscribed(self, subscriber: Subscriber, seq: int, recovered: bool | None) -> None: ...

    def lost(self, subscriber: Subscriber, error: StreamingError) -> None: ...


class SubscriberState(enum.Enum):
    #: Reading its snapshot (current value or history); live publications are parked.
    CATCHING_UP = "catching_up"
    #: Delivering live publications in seq order.
    LIVE = "live"
    #: Detached, or lost continuity (its sink was told): delivers nothing more.
    STOPPED = "stopped"


_CATCHING_UP, _LIVE, _STOPPED = SubscriberState  # module constants: `offer` is the hot path
_NOTHING_PARKED: list[Publication] = []  # shared while not catching up; never appended to


class Subscriber:
    """Delivers a channel's publications to one sink in seq order, each at most once.

    It starts CATCHING_UP: live publications are parked while the snapshot is read, then
    `catch_up` delivers the snapshot and the parked ones and goes LIVE. Delivery skips any seq
    not above `last_seq`, which is what de-duplicates history against live messages.
    """

    __slots__ = ("channel", "kind", "last_seq", "name", "parked", "replaying", "sink", "state")

    def __init__(self, sink: Sink, name: str, channel: str, kind: ChannelKind) -> None:
        self.sink = sink
        self.name = name
        self.channel = channel
        self.kind = kind
        self.last_seq = 0
        self.state = _CATCHING_UP
        self.parked: list[Publication] = []
        #: True while history is being replayed (exempt from the outbox byte budget).
        self.replaying = False

    def offer(self, publication: Publication) -> None:
        state = self.state
        if state is _LIVE:
            if publication.seq <= self.last_seq:
                return
            self.last_seq = publication.seq
            self.sink.deliver(self, publication)
        elif state is _CATCHING_UP:
            if len(self.parked) < MAX_CATCH_UP_BUFFER:
                self.parked.append(publication)
            else:
                self.stop()
                self.sink.lost(self, StreamingError("catch-up buffer overflowed"))

    def restart_catch_up(self) -> None:
        """Live delivery may have missed something (a broker reconnect): park again until a
        fresh snapshot arrives."""
        self.state, self.parked = _CATCHING_UP, []

    def go_live(self) -> None:
        """Deliver from now on, without a snapshot (an internal channel where history does not
        matter)."""
        self.state, self.parked = _LIVE, _NOTHING_PARKED

    def stop(self) -> None:
        self.state, self.parked = _STOPPED, _NOTHING_PARKED

    def catch_up(self, snapshot: Snapshot, since: int | None, *, announce: bool) -> None:
        """Leave catch-up: deliver the snapshot, then the parked live publications."""
        buffered = self.parked
        self.state, self.parked = _LIVE, _NOTHING_PARKED
        recovered: bool | None = None
        if self.kind is ChannelKind.RELIABLE:
            if since is None:
                self.last_seq = snapshot.last_seq
            elif snapshot.recovered:
                self.last_seq = since
                recovered = True
            else:
                # History no longer reaches back: jump to now rather than replay partially.
                self.last_seq = snapshot.last_seq
                recovered = False
        if announce:
            self.sink.subscribed(self, snapshot.last_seq, recovered)
        self.replaying = True
        try:
            for publication in snapshot.publications:
                self.offer(publication)
        finally:
            self.replaying = False
        for publication in buffered:
            self.offer(publication)
