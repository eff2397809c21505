"""A subscriber: one (connection, channel) pair, and how it joins a live stream without gaps."""

from __future__ import annotations

from typing import Protocol

from streaming.brokers import Snapshot
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


class Subscriber:
    """Delivers a channel's publications to one sink in seq order, each at most once.

    While `buffer` is a list the subscriber is catching up (reading history or the current
    value): live publications are parked there and replayed after the snapshot. Delivery skips
    any seq not above `last_seq`, which is what de-duplicates history against live messages.
    """

    __slots__ = ("buffer", "channel", "kind", "last_seq", "name", "replaying", "sink")

    def __init__(self, sink: Sink, name: str, channel: str, kind: ChannelKind) -> None:
        self.sink = sink
        self.name = name
        self.channel = channel
        self.kind = kind
        self.last_seq = 0
        self.buffer: list[Publication] | None = []
        #: True while history is being replayed (exempt from the outbox byte budget).
        self.replaying = False

    def offer(self, publication: Publication) -> None:
        buffer = self.buffer
        if buffer is not None:
            if len(buffer) < MAX_CATCH_UP_BUFFER:
                buffer.append(publication)
            else:
                self.buffer = None
                self.last_seq = 1 << 62  # deliver nothing more
                self.sink.lost(self, StreamingError("catch-up buffer overflowed"))
            return
        if publication.seq <= self.last_seq:
            return
        self.last_seq = publication.seq
        self.sink.deliver(self, publication)

    def catch_up(self, snapshot: Snapshot, since: int | None, *, announce: bool) -> None:
        """Leave catch-up: deliver the snapshot, then the parked live publications."""
        buffered = self.buffer or []
        self.buffer = None
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
