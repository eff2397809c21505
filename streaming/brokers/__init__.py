"""Brokers carry publications between processes; chosen by URL scheme, imported lazily."""

from __future__ import annotations

from streaming.brokers.base import (
    Broker,
    OnPublication,
    OnResubscribed,
    Snapshot,
    SnapshotRequest,
)
from streaming.errors import ConfigurationError

__all__ = [
    "Broker",
    "OnPublication",
    "OnResubscribed",
    "Snapshot",
    "SnapshotRequest",
    "open_broker",
]


def open_broker(url: str, *, history_size: int, history_ttl: float) -> Broker:
    """Build the broker for `url`: memory:// or redis://host:port/db?prefix=..., with
    `&cluster=true` when the URL names a node of a Redis Cluster."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from streaming.brokers.memory import MemoryBroker

        return MemoryBroker(history_size=history_size, history_ttl=history_ttl)
    if scheme in {"redis", "rediss", "unix"}:
        from streaming.brokers.redis import RedisBroker, wants_cluster

        if wants_cluster(url):
            from streaming.brokers.redis_cluster import RedisClusterBroker

            return RedisClusterBroker(url, history_size=history_size, history_ttl=history_ttl)
        return RedisBroker(url, history_size=history_size, history_ttl=history_ttl)
    raise ConfigurationError(f"unsupported broker URL scheme {scheme!r} (memory://, redis://)")
