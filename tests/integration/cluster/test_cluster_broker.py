"""The streaming broker on a real Redis Cluster passes the contract the single-Redis broker
passes, and lays channels out by slot: a channel's keys on one shard, channels over all."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from streaming.brokers.redis_cluster import RedisClusterBroker
from tests.broker_suite import RedisBrokerContract, redis_broker
from tests.integration.cluster.redis_cluster import LocalCluster, master_of
from tests.unit.streaming.support import eventually, make_engine

pytestmark = pytest.mark.integration


class TestRedisClusterBroker(RedisBrokerContract):
    pass


async def test_a_channels_keys_share_a_slot_and_channels_spread_over_shards(
    broker_url: str, cluster_client: RedisCluster
) -> None:
    async with make_engine(broker_url) as engine:
        broker = redis_broker(engine)
        assert isinstance(broker, RedisClusterBroker)
        channels = [f"quotes:S{i}" for i in range(30)]
        for channel in channels:
            await engine.publish(channel, "quote", {"c": channel})
        await engine.publish("orders:alice", "order", {"n": 1})
        for what in ("seq", "history", "ch"):
            assert cluster_client.keyslot(broker.key(what, "orders:alice")) == (
                cluster_client.keyslot(broker.key("seq", "orders:alice"))
            )
        owners = {master_of(cluster_client, broker.key("latest", c)) for c in channels}
        assert len(owners) == 3
        # And the values are really there, one key per channel on its own master.
        for channel in channels[:5]:
            assert await cluster_client.exists(broker.key("latest", channel)) == 1


async def test_a_reliable_publish_waits_for_a_replica_and_a_latest_one_does_not(
    redis_cluster: LocalCluster, broker_url: str
) -> None:
    """So that an acknowledged publication of a reliable channel survives its master's
    failover (Redis replicates asynchronously); quotes need no such care."""
    await eventually(redis_cluster.replicas_listed, within=15)
    async with make_engine(broker_url) as engine:
        broker = redis_broker(engine)
        assert isinstance(broker, RedisClusterBroker)
        await broker.refresh()  # what the link does every few seconds anyway
        before = await wait_calls(redis_cluster)
        await engine.publish("orders:w", "order", {"n": 1})
        await engine.publish_many([("orders:w", "order", {"n": 2}), ("quotes:W", "quote", {})])
        assert await wait_calls(redis_cluster) == before + 2
        await engine.publish("quotes:W", "quote", {"p": 1})
        assert await wait_calls(redis_cluster) == before + 2


async def wait_calls(redis_cluster: LocalCluster) -> int:
    """WAIT commands served, over every node."""
    total = 0
    for port in redis_cluster.processes:
        async with aioredis.Redis(port=port) as node:
            stats = await node.info("commandstats")
            total += stats.get("cmdstat_wait", {}).get("calls", 0)
    return total
