"""The Redis client the Redis adapters share: one Redis, or a Redis Cluster
(HUB_REDIS_CLUSTER=true, the URL naming any one node)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

#: Either client: the adapters use only commands that work on both (single-key commands,
#: single-key transactions, pipelines), and `get_values` for reads of many keys.
RedisClient = Redis | RedisCluster


def redis_client(url: str, *, cluster: bool) -> RedisClient:
    """A client for `url` (it connects on first use), with short timeouts: a Redis that stops
    answering must degrade a request, not hold it."""
    if cluster:
        return RedisCluster.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


async def get_values(redis: RedisClient, keys: list[str]) -> list[bytes | str | None]:
    """The values of many keys, in order, in one round trip per server (none for no keys).

    One Redis: MGET. A cluster refuses MGET across slots, so there one GET per key goes into a
    pipeline, which redis-py sends as one batch per master, to all masters at once. (Hash tags
    would allow MGET, but would put every key of a kind on one shard: the quote store is the
    write-heaviest data Hub keeps, so it is spread over the shards instead.)
    """
    if not keys:
        return []
    if isinstance(redis, RedisCluster):
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            return list(await pipe.execute())
    return list(await redis.mget(keys))
