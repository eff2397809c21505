"""The subscriber's states: parked while catching up, live in seq order, stopped for good."""

from __future__ import annotations

import pytest

from streaming import ChannelKind, Publication
from streaming.brokers import Snapshot
from streaming.errors import StreamingError
from streaming.subscriber import Subscriber, SubscriberState


class Recorder:
    def __init__(self) -> None:
        self.delivered: list[int] = []
        self.losses: list[str] = []

    def deliver(self, subscriber: Subscriber, publication: Publication) -> None:
        self.delivered.append(publication.seq)

    def subscribed(self, subscriber: Subscriber, seq: int, recovered: bool | None) -> None:
        pass

    def lost(self, subscriber: Subscriber, error: StreamingError) -> None:
        self.losses.append(str(error))


def state(sub: Subscriber) -> SubscriberState:
    """Read through a call: mypy would keep the narrowing of an earlier assert on the field."""
    return sub.state


def pub(seq: int) -> Publication:
    return Publication("orders:a", ChannelKind.RELIABLE, seq, "order", b"{}")


def test_parks_while_catching_up_then_delivers_snapshot_and_parked_in_order() -> None:
    sink = Recorder()
    sub = Subscriber(sink, "orders", "orders:a", ChannelKind.RELIABLE)
    assert state(sub) is SubscriberState.CATCHING_UP
    sub.offer(pub(3))
    sub.offer(pub(4))
    assert sink.delivered == []
    sub.catch_up(Snapshot(3, [pub(2), pub(3)], recovered=True), since=1, announce=False)
    assert state(sub) is SubscriberState.LIVE
    assert sink.delivered == [2, 3, 4]  # 3 arrived twice (history and live): delivered once
    sub.offer(pub(4))
    sub.offer(pub(5))
    assert sink.delivered == [2, 3, 4, 5]


def test_a_catch_up_that_overflows_stops_and_tells_the_sink(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("streaming.subscriber.MAX_CATCH_UP_BUFFER", 2)
    sink = Recorder()
    sub = Subscriber(sink, "orders", "orders:a", ChannelKind.RELIABLE)
    for seq in (1, 2, 3):
        sub.offer(pub(seq))
    assert state(sub) is SubscriberState.STOPPED
    assert sink.losses == ["catch-up buffer overflowed"]
    sub.offer(pub(4))
    sub.catch_up(Snapshot(4, [], recovered=True), since=None, announce=False)
    assert sink.delivered == []  # the engine skips catch-up for a stopped subscriber anyway


def test_restart_parks_again_and_stop_drops_everything() -> None:
    sink = Recorder()
    sub = Subscriber(sink, "orders", "orders:a", ChannelKind.RELIABLE)
    sub.catch_up(Snapshot(0, [], recovered=True), since=None, announce=False)
    sub.offer(pub(1))
    sub.restart_catch_up()  # e.g. the broker reconnected
    sub.offer(pub(2))
    assert sink.delivered == [1]
    sub.catch_up(Snapshot(2, [pub(2)], recovered=True), since=1, announce=False)
    assert sink.delivered == [1, 2]
    sub.stop()
    sub.offer(pub(3))
    assert sink.delivered == [1, 2]
    assert state(sub) is SubscriberState.STOPPED
