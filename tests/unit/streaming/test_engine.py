"""The engine on the memory broker, through the in-process subscription API."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from streaming import EngineNotRunning, Publication, SlowConsumer, Subscription

from .support import make_engine


async def take(subscription: Subscription, n: int, within: float = 2.0) -> list[Publication]:
    out = []
    async with asyncio.timeout(within):
        async for publication in subscription:
            out.append(publication)
            if len(out) == n:
                break
    return out


async def test_publish_reaches_subscriber_with_seq() -> None:
    async with make_engine() as engine, engine.subscribe("orders:alice") as sub:
        assert await engine.publish("orders:alice", "order", {"id": 1}) == 1
        assert await engine.publish("orders:alice", "order", {"id": 2}) == 2
        got = await take(sub, 2)
        assert [(p.seq, p.type, p.decode()) for p in got] == [
            (1, "order", {"id": 1}),
            (2, "order", {"id": 2}),
        ]
        assert engine.stats()["deliveries"] == 2


async def test_latest_value_is_sent_on_subscribe() -> None:
    async with make_engine() as engine:
        await engine.publish("quotes:AAPL", "quote", {"p": "1"})
        await engine.publish("quotes:AAPL", "quote", {"p": "2"})
        async with engine.subscribe("quotes:AAPL") as sub:
            [current] = await take(sub, 1)
            assert current.decode() == {"p": "2"}
            assert current.seq == 2
            assert sub.seq == 2


async def test_a_latest_value_seen_live_is_served_without_a_broker_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with make_engine() as engine, engine.subscribe("quotes:AAPL") as first:
        await engine.publish("quotes:AAPL", "quote", {"p": "1"})
        await take(first, 1)
        broker = engine._require_broker()
        reads: list[int] = []
        original = broker.snapshots

        async def counted(requests: list[object]) -> object:
            reads.append(len(requests))
            return await original(requests)  # type: ignore[arg-type]

        monkeypatch.setattr(broker, "snapshots", counted)
        async with engine.subscribe("quotes:AAPL") as second, engine.subscribe("quotes:MSFT"):
            [current] = await take(second, 1)
            assert current.decode() == {"p": "1"}
            assert second.seq == 1
        assert reads == [1]  # only MSFT, which this node had no value for, was read


async def test_a_channel_known_to_be_empty_is_not_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with make_engine() as engine, engine.subscribe("quotes:NEW"):
        broker = engine._require_broker()
        reads: list[int] = []
        original = broker.snapshots

        async def counted(requests: list[object]) -> object:
            reads.append(len(requests))
            return await original(requests)  # type: ignore[arg-type]

        monkeypatch.setattr(broker, "snapshots", counted)
        async with engine.subscribe("quotes:NEW") as second:
            assert second.seq == 0
        assert reads == []


async def test_live_delivery_that_overtakes_the_snapshot_read_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A publication delivered live while the first subscriber's snapshot was being read is
    newer than that snapshot: the node must remember the newer one for the next subscriber."""
    async with make_engine() as engine:
        await engine.publish("quotes:RACE", "quote", {"p": "old"})
        broker = engine._require_broker()
        original = broker.snapshots

        async def overtaken(requests: list[object]) -> object:
            snapshots = await original(requests)  # type: ignore[arg-type]
            await engine.publish("quotes:RACE", "quote", {"p": "new"})  # arrives live first
            return snapshots

        monkeypatch.setattr(broker, "snapshots", overtaken)
        async with engine.subscribe("quotes:RACE") as first:
            [seen] = await take(first, 1)  # a latest-value subscription conflates old -> new
            assert seen.decode() == {"p": "new"}
            monkeypatch.setattr(broker, "snapshots", original)
            async with engine.subscribe("quotes:RACE") as second:
                [current] = await take(second, 1)
                assert current.decode() == {"p": "new"}


async def test_latest_channel_conflates_for_a_slow_reader() -> None:
    async with make_engine() as engine, engine.subscribe("quotes:AAPL") as sub:
        for i in range(100):
            await engine.publish("quotes:AAPL", "quote", {"p": i})
        [newest] = await take(sub, 1)
        assert newest.decode() == {"p": 99}
        assert engine.stats()["conflated"] == 99


async def test_reliable_recovery_since_replays_exactly_the_gap() -> None:
    async with make_engine() as engine:
        for i in range(1, 11):
            await engine.publish("orders:alice", "order", {"n": i})
        async with engine.subscribe("orders:alice", since=4) as sub:
            assert sub.recovered is True
            await engine.publish("orders:alice", "order", {"n": 11})
            got = await take(sub, 7)
            assert [p.seq for p in got] == list(range(5, 12))


async def test_recovery_is_never_partial() -> None:
    async with make_engine(history_size=5) as engine:
        for i in range(1, 11):
            await engine.publish("orders:alice", "order", {"n": i})
        async with engine.subscribe("orders:alice", since=3) as sub:
            assert sub.recovered is False
            assert sub.seq == 10
            await engine.publish("orders:alice", "order", {"n": 11})
            [only] = await take(sub, 1)
            assert only.seq == 11
        async with engine.subscribe("orders:alice", since=6) as sub:
            assert sub.recovered is True
            assert [p.seq for p in await take(sub, 5)] == [7, 8, 9, 10, 11]


async def test_history_expires_by_age() -> None:
    async with make_engine(history_ttl=0.05) as engine:
        await engine.publish("orders:alice", "order", {"n": 1})
        await engine.publish("orders:alice", "order", {"n": 2})
        await asyncio.sleep(0.1)
        async with engine.subscribe("orders:alice", since=1) as sub:
            assert sub.recovered is False


async def test_since_ahead_of_the_channel_is_not_recovered() -> None:
    async with make_engine() as engine:
        await engine.publish("orders:alice", "order", {"n": 1})
        async with engine.subscribe("orders:alice", since=7) as sub:
            assert sub.recovered is False
        async with engine.subscribe("orders:alice", since=1) as sub:
            assert sub.recovered is True


async def test_reliable_local_subscription_overflow_raises_slow_consumer() -> None:
    async with make_engine() as engine, engine.subscribe("orders:alice", max_pending=3) as sub:
        for i in range(5):
            await engine.publish("orders:alice", "order", {"n": i})
        with pytest.raises(SlowConsumer):
            await take(sub, 5)
        assert engine.stats()["slow_consumer_closes"] == 1


async def test_subscription_ends_when_engine_stops() -> None:
    stack = contextlib.AsyncExitStack()
    async with make_engine() as engine:
        sub = await stack.enter_async_context(engine.subscribe("quotes:X"))
        waiter = asyncio.create_task(take(sub, 1))
        await asyncio.sleep(0.01)
    assert await waiter == []
    await stack.aclose()


async def test_upstream_reference_counting_and_stats() -> None:
    async with make_engine() as engine:
        async with engine.subscribe("quotes:X"), engine.subscribe("quotes:X"):
            assert engine.stats()["subscriptions"] == 2
            assert set(engine._fanout) == {"quotes:X", "_revoked"}  # + the control channel
        assert engine.stats()["subscriptions"] == 0
        assert set(engine._fanout) == {"_revoked"}
        stats = engine.stats()
        assert set(stats) == {
            "connections",
            "subscriptions",
            "deliveries",
            "conflated",
            "slow_consumer_closes",
            "broker_reconnects",
            "messages_in",
            "errors",
        }


async def test_engine_must_be_running() -> None:
    engine = make_engine()
    with pytest.raises(EngineNotRunning):
        await engine.publish("quotes:X", "quote", {})
    assert not engine.ready
    async with engine:
        assert engine.ready


async def test_publication_encoded_once_and_rendered_per_name() -> None:
    async with make_engine() as engine, engine.subscribe("quotes:X") as sub:
        await engine.publish("quotes:X", "quote", {"p": "1.5"})
        [pub] = await take(sub, 1)
        text = pub.render("quotes:X")
        assert text is pub.render("quotes:X")
        assert text == '{"type":"quote","channel":"quotes:X","seq":1,"data":{"p":"1.5"}}'
        assert (
            pub.render("alias") == '{"type":"quote","channel":"alias","seq":1,"data":{"p":"1.5"}}'
        )


async def test_a_channel_whose_seq_went_back_ends_its_subscriptions() -> None:
    """After a reconnect the broker may hold less than this node delivered (a failed-over
    master had not replicated its last writes, a Redis restarted empty): the seqs will be handed
    out again, so subscribers that saw them are told instead of skipping the new ones."""
    from streaming import SubscriptionLost

    async with make_engine() as engine, engine.subscribe("orders:alice") as sub:
        for n in range(3):
            await engine.publish("orders:alice", "order", {"n": n})
        assert [p.seq for p in await take(sub, 3)] == [1, 2, 3]
        broker = engine._require_broker()
        broker._seq["orders:alice"] = 1  # type: ignore[attr-defined]  # writes 2 and 3 lost
        broker._history["orders:alice"].pop()  # type: ignore[attr-defined]
        broker._history["orders:alice"].pop()  # type: ignore[attr-defined]
        engine._fanout.resubscribed("orders:alice")
        with pytest.raises(SubscriptionLost):
            await take(sub, 1)


async def test_a_resync_reads_again_when_live_delivery_breaks_once_more_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Live delivery comes back, breaks and comes back again (a failover: the old master, then
    the new one) while the first catch-up read is in flight: that read may predate the second
    gap, so the subscriber must not go live on it."""
    async with make_engine() as engine, engine.subscribe("orders:alice") as sub:
        for n in range(3):
            await engine.publish("orders:alice", "order", {"n": n})
        assert [p.seq for p in await take(sub, 3)] == [1, 2, 3]
        broker = engine._require_broker()
        original, release, calls = broker.snapshots, asyncio.Event(), []

        async def held(requests: Any) -> Any:
            snapshot = await original(requests)  # read now, answered later
            calls.append(snapshot)
            if len(calls) == 1:
                await release.wait()
            return snapshot

        monkeypatch.setattr(broker, "snapshots", held)
        engine._fanout.resubscribed("orders:alice")
        await asyncio.sleep(0)
        deliver, broker._on_publication = broker._on_publication, None  # type: ignore[attr-defined]
        await engine.publish("orders:alice", "order", {"n": 3})  # missed by this node
        broker._on_publication = deliver  # type: ignore[attr-defined]
        engine._fanout.resubscribed("orders:alice")
        release.set()
        await engine.publish("orders:alice", "order", {"n": 4})
        assert [p.seq for p in await take(sub, 2)] == [4, 5]
        assert len(calls) == 2
