"""A real 3-master Redis Cluster (with a replica each) for the whole session, started on free
ports and removed afterwards; fixtures that point the broker and Hub's adapters at it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from tests.broker_suite import KillPubSub
from tests.integration.cluster.redis_cluster import ClusterUnavailable, LocalCluster, start_cluster


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """Skipped when it cannot start here; under CI=true that fails instead."""
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no local Redis Cluster: {exc} (CI=true: integration tests never skip)")
        pytest.skip(f"no local Redis Cluster: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster_client(redis_cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    """redis-py's cluster client, started from one node (it finds the others)."""
    client = RedisCluster.from_url(redis_cluster.url())
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def redis_client(cluster_client: RedisCluster) -> RedisCluster:
    """What the broker contract reads and trims keys with."""
    return cluster_client


@pytest.fixture
async def prefix(cluster_client: RedisCluster) -> AsyncIterator[str]:
    """A unique key prefix; only keys under it are deleted afterwards, on every master."""
    value = f"test:{uuid.uuid4().hex[:12]}:"
    yield value
    keys = [key async for key in cluster_client.scan_iter(match=f"{value}*")]
    if keys:
        await cluster_client.delete(*keys)


@pytest.fixture
def broker_url(redis_cluster: LocalCluster, prefix: str) -> str:
    return f"{redis_cluster.url()}?prefix={prefix}&cluster=true"


@pytest.fixture
def kill_pubsub(redis_cluster: LocalCluster, prefix: str) -> KillPubSub:
    """CLIENT KILL every pub/sub connection of this prefix, on every node."""

    async def kill() -> int:
        # Connected and listed first, then cut at nearly the same instant: a link reconnects
        # within ~50 ms, and the tests look for the moment all of them were down.
        name = f"streaming-pubsub-{prefix}"
        nodes = [aioredis.Redis(port=port) for port in redis_cluster.processes]
        try:
            listed = await asyncio.gather(*(node.client_list() for node in nodes))
            victims = [
                node.client_kill_filter(_id=c["id"])
                for node, clients in zip(nodes, listed, strict=True)
                for c in clients
                if c.get("name") == name
            ]
            await asyncio.gather(*victims)
            return len(victims)
        finally:
            await asyncio.gather(*(node.aclose() for node in nodes))

    return kill
