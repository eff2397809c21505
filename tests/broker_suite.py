"""The contract every networked broker passes: the Redis broker on one Redis
(tests/integration/streaming) and on a Redis Cluster (tests/integration/cluster). A subclass
provides the fixtures `broker_url`, `redis_client` (a client of the same Redis, which
reads and trims keys) and `kill_pubsub` (cuts this broker's pub/sub connections server-side and
says how many it cut)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from streaming import ChannelKind, Engine, Publication, Subscription
from streaming.brokers.redis import RedisBroker
from tests.unit.streaming.support import client, eventually, make_engine, running

ROOT = Path(__file__).resolve().parents[1]
KillPubSub = Callable[[], Awaitable[int]]


async def take(subscription: Subscription, n: int, within: float = 5.0) -> list[Publication]:
    out: list[Publication] = []
    async with asyncio.timeout(within):
        async for publication in subscription:
            out.append(publication)
            if len(out) == n:
                break
    return out


def redis_broker(engine: Engine) -> RedisBroker:
    broker = engine._require_broker()
    assert isinstance(broker, RedisBroker)
    return broker


async def run_node(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.streaming.node",
        *args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


@contextlib.asynccontextmanager
async def node_server(broker_url: str) -> AsyncIterator[str]:
    """Another OS process serving WebSocket/SSE over the same Redis; yields its address."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.streaming.node",
        "serve",
        broker_url,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        word, address = line.decode().split()
        assert word == "ready"
        yield address
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


class RedisBrokerContract:
    async def test_publish_in_another_process_reaches_websocket_clients(
        self, broker_url: str
    ) -> None:
        async with running(broker_url) as (engine, address), client(address) as c:
            await c.subscribe("events:x", "quotes:X")
            assert engine.ready
            await run_node("publish", broker_url, "events:x", "event", "40")
            await run_node("publish", broker_url, "quotes:X", "quote", "10")
            events = [await c.expect("event") for _ in range(40)]
            assert [m["seq"] for m in events] == list(range(1, 41))
            assert [m["data"]["i"] for m in events] == list(range(40))
            quote = await c.expect("quote", lambda m: m["seq"] == 10)
            assert quote["data"] == {"i": 9}

    async def test_latest_value_is_shared_through_redis(self, broker_url: str) -> None:
        async with make_engine(broker_url) as one, make_engine(broker_url) as two:
            await one.publish("quotes:X", "quote", {"p": 1})
            await one.publish("quotes:X", "quote", {"p": 2})
            async with two.subscribe("quotes:X") as sub:
                [current] = await take(sub, 1)
                assert (current.seq, current.decode()) == (2, {"p": 2})
                await one.publish("quotes:X", "quote", {"p": 3})
                [live] = await take(sub, 1)
                assert live.decode() == {"p": 3}

    async def test_disconnect_from_one_process_and_recover_on_another(
        self, broker_url: str
    ) -> None:
        async with node_server(broker_url) as other, running(broker_url) as (engine, address):
            async with client(other) as c:
                await c.subscribe("orders")
                for i in range(5):
                    await engine.publish("orders:alice", "order", {"n": i})
                seen = [await c.expect("order") for _ in range(5)]
                assert [m["seq"] for m in seen] == [1, 2, 3, 4, 5]
            for i in range(5, 12):
                await engine.publish("orders:alice", "order", {"n": i})
            async with client(address) as c:
                [subscribed] = await c.subscribe("orders", since={"orders": 5})
                assert subscribed["recovered"] is True and subscribed["seq"] == 12
                rest = [await c.expect("order") for _ in range(7)]
                assert [m["seq"] for m in rest] == list(range(6, 13))
                assert [m["data"]["n"] for m in rest] == list(range(5, 12))

    async def test_recovery_is_never_partial_with_redis(
        self, broker_url: str, redis_client: Any
    ) -> None:
        async with make_engine(broker_url) as engine:
            for i in range(10):
                await engine.publish("events:t", "event", {"n": i})
            history = redis_broker(engine).key("history", "events:t")
            await redis_client.xtrim(history, maxlen=3, approximate=False)
            async with engine.subscribe("events:t", since=2) as sub:
                assert sub.recovered is False and sub.seq == 10
            async with engine.subscribe("events:t", since=7) as sub:
                assert sub.recovered is True
                assert [p.seq for p in await take(sub, 3)] == [8, 9, 10]
            async with engine.subscribe("events:t", since=10) as sub:
                assert sub.recovered is True
            async with engine.subscribe("events:t", since=11) as sub:
                assert sub.recovered is False

    async def test_history_expires_by_age_with_redis(self, broker_url: str) -> None:
        async with make_engine(broker_url, history_ttl=0.3) as engine:
            await engine.publish("events:old", "event", {"n": 1})
            await engine.publish("events:old", "event", {"n": 2})
            await asyncio.sleep(0.5)
            async with engine.subscribe("events:old", since=1) as sub:
                assert sub.recovered is False

    async def test_resubscribes_and_fills_the_gap_after_the_pubsub_connection_is_killed(
        self, broker_url: str, kill_pubsub: KillPubSub
    ) -> None:
        async with (
            make_engine(broker_url) as listener,
            make_engine(broker_url) as publisher,
            listener.subscribe("events:k") as events,
            listener.subscribe("quotes:K") as quotes,
        ):
            for i in range(5):
                await publisher.publish("events:k", "event", {"n": i})
            assert [p.seq for p in await take(events, 5)] == [1, 2, 3, 4, 5]

            assert await kill_pubsub() >= 2  # at least one per engine
            # Published while the listener is disconnected: must arrive after it reconnects.
            for i in range(5, 15):
                await publisher.publish("events:k", "event", {"n": i})
            await publisher.publish("quotes:K", "quote", {"p": "last"})

            got = await take(events, 10, within=10)
            assert [p.seq for p in got] == list(range(6, 16))
            await eventually(lambda: listener.stats()["broker_reconnects"] >= 1)
            await eventually(lambda: listener.ready)
            latest = await take(quotes, 1)
            assert latest[0].decode() == {"p": "last"}
            # And live delivery flows again.
            await publisher.publish("events:k", "event", {"n": 15})
            [live] = await take(events, 1)
            assert live.seq == 16

    async def test_a_value_missed_while_disconnected_is_not_served_from_memory(
        self, broker_url: str, kill_pubsub: KillPubSub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A node serves new subscribers the latest value it saw live; after its pub/sub link
        was down, that value may be stale, so the next subscriber must get the newer one from
        Redis."""
        async with (
            make_engine(broker_url) as listener,
            make_engine(broker_url) as publisher,
            listener.subscribe("quotes:Q") as first,
        ):
            await publisher.publish("quotes:Q", "quote", {"p": "before"})
            assert (await take(first, 1))[0].decode() == {"p": "before"}
            # Hold back the resync of `first` after the reconnect, so that the new subscriber
            # below cannot be saved by it: only the node's own invalidation keeps "before" from
            # being used.
            broker = listener._require_broker()
            original, resync_may_run = broker.snapshots, asyncio.Event()
            calls = 0

            async def held(requests: Any) -> Any:
                nonlocal calls
                if any(r.channel == "quotes:Q" for r in requests):  # not the revocation one
                    calls += 1
                    if calls == 1:
                        await resync_may_run.wait()
                return await original(requests)

            monkeypatch.setattr(broker, "snapshots", held)
            await kill_pubsub()
            await eventually(lambda: not listener.ready)
            await publisher.publish("quotes:Q", "quote", {"p": "missed"})
            await eventually(lambda: listener.ready, within=10)
            await eventually(lambda: calls == 1)  # the resync started and is held
            async with listener.subscribe("quotes:Q") as second:
                assert (await take(second, 1))[0].decode() == {"p": "missed"}
            resync_may_run.set()
            assert (await take(first, 1))[0].decode() == {"p": "missed"}

    async def test_a_burst_of_concurrent_publishes_waits_for_connections(
        self, broker_url: str
    ) -> None:
        """More publishes in flight than the pool has connections: they queue, none fails."""
        async with make_engine(broker_url) as engine:
            seqs = await asyncio.gather(
                *(engine.publish("orders:burst", "order", {"n": i}) for i in range(300))
            )
        assert sorted(seqs) == list(range(1, 301))

    async def test_active_says_whether_live_delivery_flows_now(
        self, broker_url: str, kill_pubsub: KillPubSub
    ) -> None:
        """`active` lets a subscribe skip waiting; it must be False whenever waiting is
        needed."""
        async with make_engine(broker_url) as engine:
            broker = engine._require_broker()
            broker.want("quotes:ACT", ChannelKind.LATEST)
            assert not broker.active(["quotes:ACT"])  # SUBSCRIBE not confirmed yet
            await broker.wait_active(["quotes:ACT"])
            assert broker.active(["quotes:ACT"])
            await kill_pubsub()
            await eventually(lambda: not broker.active(["quotes:ACT"]))
            await eventually(lambda: broker.active(["quotes:ACT"]), within=10)
            broker.unwant("quotes:ACT")

    async def test_a_link_without_subscriptions_stays_connected(
        self, broker_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A publishing-only process (hub feed) wants no channel but the engine's own: Redis
        may then answer the health PING with a plain PONG, which must count, or the link
        drops itself every 3 intervals."""
        from streaming.brokers import _redis_pubsub

        monkeypatch.setattr(_redis_pubsub, "HEALTH_INTERVAL", 0.05)
        async with make_engine(broker_url) as publisher:
            await eventually(lambda: publisher.ready)
            await asyncio.sleep(0.6)  # 12 health intervals
            assert publisher.stats()["broker_reconnects"] == 0
