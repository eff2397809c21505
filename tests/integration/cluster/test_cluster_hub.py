"""Hub on a Redis Cluster (HUB_REDIS_CLUSTER=true): the quote store, instrument cache and rate
limiter pass their contracts on redis-py's cluster client, and several real `hub serve` nodes,
workers and the feed share the cluster as they share one Redis."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis
import websockets
from redis.asyncio.cluster import RedisCluster

from hub.adapters.redis_client import get_values, redis_client
from hub.adapters.redis_market import RedisInstrumentCache, RedisQuotes
from hub.adapters.redis_ratelimit import RedisRateLimiter
from tests.contracts import RateLimiterContract
from tests.e2e.test_multi_node import Cluster, Socket, buy, cluster, filled, trader, ws_url
from tests.integration.cluster.redis_cluster import LocalCluster, master_of
from tests.market_suite import InstrumentCacheContract, QuoteStoreContract, quote

pytestmark = pytest.mark.integration


class TestClusterQuotes(QuoteStoreContract):
    @pytest.fixture
    def store(self, cluster_client: RedisCluster, prefix: str) -> RedisQuotes:
        return RedisQuotes(cluster_client, prefix=prefix)


class TestClusterInstrumentCache(InstrumentCacheContract):
    @pytest.fixture
    def cache(self, cluster_client: RedisCluster, prefix: str) -> RedisInstrumentCache:
        return RedisInstrumentCache(cluster_client, ttl_s=300, prefix=prefix)


class TestClusterRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self, cluster_client: RedisCluster, prefix: str) -> RedisRateLimiter:
        return RedisRateLimiter(cluster_client, prefix=prefix)


async def test_a_read_of_many_symbols_spans_every_shard(
    redis_cluster: LocalCluster, cluster_client: RedisCluster, prefix: str
) -> None:
    client = redis_client(redis_cluster.url(), cluster=True)
    try:
        store = RedisQuotes(client, prefix=prefix)
        symbols = [f"S{i}" for i in range(40)]
        for i, symbol in enumerate(symbols):
            await store.put(quote(symbol, f"{100 + i}.00"))
        keys = [prefix + s for s in symbols]
        assert len({master_of(cluster_client, k) for k in keys}) == 3
        got = await store.get_many([*symbols, "NOPE"])
        assert {s: q.last for s, q in got.items()} == {
            s: Decimal(f"{100 + i}.00") for i, s in enumerate(symbols)
        }
        assert store.fallbacks == 0
        assert await get_values(client, []) == []
    finally:
        await client.aclose()


@pytest.fixture
def nodes(
    redis_cluster: LocalCluster,
    schema_url: str,
    amqp_url: str,
    amqp_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cluster]:
    """Two `hub serve`, two `hub worker` and one `hub feed`, all with HUB_REDIS_CLUSTER=true
    and HUB_REDIS_URL naming one (the same) node."""
    monkeypatch.setenv("HUB_REDIS_CLUSTER", "true")
    with cluster(schema_url, redis_cluster.url(), amqp_url, amqp_prefix) as c:
        yield c


async def shard_channels(redis_cluster: LocalCluster, prefix: str) -> dict[int, list[bytes | str]]:
    """The sharded pub/sub channels under `prefix` that each master has subscribers for."""
    found: dict[int, list[bytes | str]] = {}
    for port in redis_cluster.processes:
        async with aioredis.Redis(port=port) as node:
            if (await node.role())[0] == b"master":
                found[port] = await node.pubsub_shardchannels(f"{prefix}*")
    return found


async def fill_on_a_seen_on_b_then_b_dies(c: Cluster) -> None:
    """As tests/e2e/test_multi_node.py does on one Redis, reading the replay until both missed
    orders are filled (two workers may publish their events in either order)."""
    auth = await trader(c.a.url)
    async with websockets.connect(ws_url(c.b), additional_headers=auth) as ws_b:
        on_b = Socket(ws_b)
        await on_b.subscribe()
        first = await buy(c.a.url, auth)
        seen = await on_b.order_events((first, "filled"))
        assert [s for _, s, _ in seen] == ["pending_new", "new", "filled"]
        last = seen[-1][2]
        c.b.process.send_signal(signal.SIGKILL)  # the node dies under its client
        c.b.process.wait(timeout=10)
        missed = [await buy(c.a.url, auth), await buy(c.a.url, auth)]
        await filled(c.a.url, auth, set(missed))
    async with websockets.connect(ws_url(c.a), additional_headers=auth) as ws_a:
        on_a = Socket(ws_a)
        answer = await on_a.subscribe(since=last)
        assert answer["recovered"] is True
        replayed: list[tuple[str, str, int]] = []
        async with asyncio.timeout(20):
            while {(o, "filled") for o in missed} - {(o, s) for o, s, _ in replayed}:
                m = await on_a.next()
                if m["type"] == "order":
                    replayed.append((m["data"]["id"], m["data"]["status"], m["seq"]))
    # Exactly what was missed, in seq order: both orders' whole histories, nothing before.
    assert [seq for *_, seq in replayed] == list(range(last + 1, last + 1 + len(replayed)))
    for order in missed:
        assert [s for o, s, _ in replayed if o == order] == ["pending_new", "new", "filled"]


@pytest.mark.timeout(120)
def test_an_order_fills_across_nodes_and_a_client_recovers_on_another_node(
    nodes: Cluster, redis_cluster: LocalCluster, amqp_prefix: str
) -> None:
    """The multi-node scenario of tests/e2e/test_multi_node.py, on the cluster; meanwhile the
    nodes' channels (the feed's quotes, which workers follow, and orders) use every shard."""
    asyncio.run(fill_on_a_seen_on_b_then_b_dies(nodes))
    channels = asyncio.run(shard_channels(redis_cluster, amqp_prefix))
    assert len([port for port, names in channels.items() if names]) == 3, channels
