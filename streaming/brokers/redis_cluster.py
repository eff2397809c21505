"""The Redis broker on a Redis Cluster (`redis://any-node:6379/0?cluster=true`): the contract
and payloads of RedisBroker, laid out so that each channel lives on one shard.

Every key of a channel carries the channel as its hash tag, so its seq counter, its history or
latest value and its pub/sub channel share one slot, and the publish script stays atomic on the
master that owns it (it SPUBLISHes there: sharded pub/sub, Redis 7):
    <prefix>seq:{<channel>}      <prefix>latest:{<channel>}
    <prefix>history:{<channel>}  <prefix>ch:{<channel>}
Channels spread over the shards by slot. Live delivery uses SSUBSCRIBE, one pub/sub connection
per master this node needs (_redis_shards.py), and follows failovers.

Several publishes, or several channels' snapshots, go out as one pipeline, which redis-py splits
by master and sends in parallel: one round trip per shard. A snapshot is a read script per
channel (the master's TIME, the seq, and the value or the history, at one instant).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import NoScriptError

from streaming.brokers._redis_shard import hash_tag
from streaming.brokers._redis_shards import CLUSTER_ERRORS, ShardedLink
from streaming.brokers.base import OnPublication, OnResubscribed, Snapshot, SnapshotRequest
from streaming.brokers.redis import _PUBLISH, RedisBroker, parse_payload
from streaming.channels import ChannelKind
from streaming.errors import BrokerUnavailable, ConfigurationError

log = logging.getLogger("streaming.redis")

_SPUBLISH = _PUBLISH.replace("'PUBLISH'", "'SPUBLISH'")

_READ = """
local now = redis.call('TIME')
local seq = redis.call('GET', KEYS[1])
if ARGV[1] == 'l' then
  return {now[1], seq, redis.call('GET', KEYS[2])}
elseif ARGV[1] == 'r' then
  return {now[1], seq, redis.call('XRANGE', KEYS[2], ARGV[2], '+')}
end
return {now[1], seq}
"""

#: Connections per master, and commands in flight (each takes at most one per master): past it
#: a command waits, as on one Redis, where redis-py's cluster pools would raise instead.
MAX_CONNECTIONS = 64

#: How long a reliable publish waits for a replica of its shard to have it.
REPLICA_WAIT_MS = 100

#: (script, keys, args): one script call.
_Call = tuple[Any, list[str], list[Any]]


class RedisClusterBroker(RedisBroker):
    """Cross-process broker over a Redis Cluster (redis-py's cluster client for commands, one
    sharded pub/sub socket per master)."""

    def __init__(self, url: str, *, history_size: int, history_ttl: float) -> None:
        super().__init__(url, history_size=history_size, history_ttl=history_ttl)
        if "{" in self.prefix or "}" in self.prefix:
            raise ConfigurationError("a cluster broker's prefix must not contain { or }")
        self._cluster: RedisCluster | None = None
        self._read_script: Any = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    def key(self, what: str, channel: str) -> str:
        return f"{self.prefix}{what}:{hash_tag(channel)}"

    @property
    def shards(self) -> dict[str, list[str]]:
        """The channels this node follows on each master ("host:port")."""
        return self._link.shards if isinstance(self._link, ShardedLink) else {}

    async def refresh(self) -> None:
        """Read the cluster's slot map now (the link does so on trouble, and every few
        seconds)."""
        if not isinstance(self._link, ShardedLink):
            raise BrokerUnavailable("redis broker is not started")
        try:
            await self._link.refresh()
        except CLUSTER_ERRORS as exc:
            raise BrokerUnavailable(f"reading the cluster's slot map failed: {exc}") from exc

    async def start(self, on_publication: OnPublication, on_resubscribed: OnResubscribed) -> None:
        self._on_publication = on_publication
        # RESP2, as on one Redis.
        self._cluster = RedisCluster.from_url(
            self._url, protocol=2, max_connections=MAX_CONNECTIONS
        )
        self._script = self._cluster.register_script(_SPUBLISH)
        self._read_script = self._cluster.register_script(_READ)
        try:
            await self._cluster.initialize()
        except CLUSTER_ERRORS as exc:  # the link keeps trying; `ready` says so
            log.warning("redis cluster not reachable yet: %s", exc)
        link = ShardedLink(self._cluster, self.prefix, self._message, on_resubscribed)
        self._link = link
        link.start()

    async def close(self) -> None:
        await super().close()
        if self._cluster is not None:
            await self._cluster.aclose()
            self._cluster = None

    async def publish(self, channel: str, kind: ChannelKind, type_: str, data: bytes) -> int:
        if kind is ChannelKind.LATEST:  # a single script call, routed by its keys
            async with self._slots:
                try:
                    return await super().publish(channel, kind, type_, data)
                except CLUSTER_ERRORS as exc:  # what RedisBroker.publish leaves to us
                    raise BrokerUnavailable(f"publish to redis failed: {exc}") from exc
        [seq] = await self._publish([(channel, kind, type_, data)])
        return int(seq)

    async def publish_many(self, items: Sequence[tuple[str, ChannelKind, str, bytes]]) -> None:
        if items:
            await self._publish(items)

    async def _publish(self, items: Sequence[tuple[str, ChannelKind, str, bytes]]) -> list[Any]:
        if self._cluster is None:
            raise BrokerUnavailable("redis broker is not started")
        calls = [(self._script, *self._script_call(*item)) for item in items]
        try:
            return await self._evaluate(
                self._cluster, calls, self._replicated(self._cluster, items)
            )
        except CLUSTER_ERRORS as exc:
            raise BrokerUnavailable(f"publish to redis failed: {exc}") from exc

    def _replicated(
        self, cluster: RedisCluster, items: Sequence[tuple[str, ChannelKind, str, bytes]]
    ) -> list[ClusterNode]:
        """The masters of the reliable channels in `items` that have a replica. Each is asked
        to WAIT until one replica has the publications, so that one acknowledged survives its
        master's failover (Redis replicates asynchronously)."""
        masters: dict[str, ClusterNode] = {}
        slots = cluster.nodes_manager.slots_cache  # the master first, then its replicas
        for channel, kind, _, _ in items:
            if kind is ChannelKind.RELIABLE:
                nodes = slots.get(cluster.keyslot(self.key("seq", channel)))
                if nodes and len(nodes) > 1:
                    masters[nodes[0].name] = nodes[0]
        return list(masters.values())

    async def snapshots(self, requests: Sequence[SnapshotRequest]) -> list[Snapshot]:
        if self._cluster is None:
            raise BrokerUnavailable("redis broker is not started")
        calls: list[_Call] = []
        for request in requests:
            keys = [self.key("seq", request.channel)]
            if request.kind is ChannelKind.LATEST:
                keys.append(self.key("latest", request.channel))
                args = ["l"]
            elif request.since is not None:
                keys.append(self.key("history", request.channel))
                args = ["r", f"{request.since + 1}-0"]
            else:
                args = ["n"]
            calls.append((self._read_script, keys, args))
        try:
            results = await self._evaluate(self._cluster, calls)
        except CLUSTER_ERRORS as exc:
            raise BrokerUnavailable(f"reading channel state from redis failed: {exc}") from exc
        snapshots = []
        for request, (now, seq, *value) in zip(requests, results, strict=True):
            last_seq = int(seq or 0)
            if request.kind is ChannelKind.LATEST:
                raw = value[0]
                latest = [parse_payload(request.channel, request.kind, raw)] if raw else []
                snapshots.append(Snapshot(last_seq, latest, recovered=True))
            elif request.since is None:
                snapshots.append(Snapshot(last_seq, [], recovered=True))
            else:
                # XRANGE inside a script: fields come as a flat list, not a dict.
                entries = [(i, dict(zip(f[::2], f[1::2], strict=True))) for i, f in value[0]]
                snapshots.append(self._recover(request, last_seq, entries, float(now)))
        return snapshots

    async def _evaluate(
        self, cluster: RedisCluster, calls: list[_Call], wait_on: Sequence[ClusterNode] = ()
    ) -> list[Any]:
        """Run script calls in one pipeline (in order per master), then WAIT on the masters
        `wait_on`. A master that does not know a script (a promoted replica: script caches are
        not replicated) gets it loaded, and its calls run again; they had not run."""
        async with self._slots:
            results = await _pipeline(cluster, calls, wait_on)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:
                for script in {id(calls[i][0]): calls[i][0] for i in missing}.values():
                    await cluster.script_load(script.script)
                again = await _pipeline(cluster, [calls[i] for i in missing], wait_on)
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results


async def _pipeline(
    cluster: RedisCluster, calls: list[_Call], wait_on: Sequence[ClusterNode] = ()
) -> list[Any]:
    """The calls' results (an exception in place of a failed one)."""
    pipe = cluster.pipeline(transaction=False)
    for script, keys, args in calls:
        # EVALSHA through execute_command: the cluster pipeline refuses its evalsha() method,
        # but routes the command by its keys (which share one slot) all the same.
        pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    for master in wait_on:
        # After the calls on the same connection; its answer (or its error, from a master that
        # has just become a replica) does not change the publish's outcome.
        pipe.execute_command("WAIT", 1, REPLICA_WAIT_MS, target_nodes=master)
    try:
        return list(await pipe.execute(raise_on_error=False))[: len(calls)]
    finally:
        await pipe.reset()  # type: ignore[no-untyped-call]
