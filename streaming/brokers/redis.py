"""The Redis broker: pub/sub for live delivery, Streams for history, keys for latest values.

Key layout under a prefix (default "streaming:", set with ?prefix= in the URL):
    <prefix>seq:<channel>       INCR counter, the channel's seq, shared by every node
    <prefix>latest:<channel>    the newest publication of a latest-value channel
    <prefix>history:<channel>   Stream of reliable publications, entry id "<seq>-0"
    <prefix>ch:<channel>        pub/sub channel

A publication travels as b"<seq>\\n<type>\\n<json data>". Seq assignment, storage and PUBLISH
happen in one Lua script, so pub/sub order is seq order and history never disagrees with live.

With `?cluster=true` the URL names one node of a Redis Cluster: see redis_cluster.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streaming.brokers._redis_pubsub import PubSubLink
from streaming.brokers.base import OnPublication, OnResubscribed, Snapshot, SnapshotRequest
from streaming.channels import ChannelKind
from streaming.errors import BrokerUnavailable, ConfigurationError
from streaming.publication import Publication

_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local payload = seq .. '\\n' .. ARGV[2]
if ARGV[1] == 'r' then
  local now = redis.call('TIME')
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 't', now[1], 'p', payload)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
else
  redis.call('SET', KEYS[2], payload)
end
redis.call('PUBLISH', KEYS[3], payload)
return seq
"""
#: The broker's own URL parameters, which redis-py does not know.
_OPTIONS = ("prefix", "cluster")


def split_prefix(url: str) -> tuple[str, str]:
    """Remove the broker's parameters (`prefix`, `cluster`) from a redis URL; return the URL
    for redis-py and the prefix."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), "streaming:")
    rest = urlencode([(k, v) for k, v in query if k not in _OPTIONS])
    return urlunsplit(parts._replace(query=rest)), prefix


def wants_cluster(url: str) -> bool:
    """Whether the URL asks for the Redis Cluster broker (`?cluster=true`)."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    value = next((v for k, v in query if k == "cluster"), "false").lower()
    if value not in {"true", "false", "1", "0", "yes", "no"}:
        raise ConfigurationError(f"cluster={value!r} in the broker URL: use true or false")
    return value in {"true", "1", "yes"}


def parse_payload(channel: str, kind: ChannelKind, payload: bytes) -> Publication:
    """Decode b"<seq>\\n<type>\\n<data>" into a Publication."""
    seq, _, rest = payload.partition(b"\n")
    type_, _, data = rest.partition(b"\n")
    return Publication(channel, kind, int(seq), type_.decode(), data)


class Link(Protocol):
    """The pub/sub side: PubSubLink on one Redis, ShardedLink on a cluster."""

    @property
    def ready(self) -> bool: ...

    @property
    def reconnects(self) -> int: ...

    def start(self) -> None: ...

    async def close(self) -> None: ...

    def want(self, channel: str) -> None: ...

    def unwant(self, channel: str) -> None: ...

    def active(self, channels: Sequence[str]) -> bool: ...

    async def wait_active(self, channels: Sequence[str]) -> None: ...


class RedisBroker:
    """Cross-process broker over one Redis (pool for commands, one dedicated pub/sub socket)."""

    def __init__(self, url: str, *, history_size: int, history_ttl: float) -> None:
        self._url, self._prefix = split_prefix(url)
        if "\n" in self._prefix:
            raise ConfigurationError("redis prefix must not contain a newline")
        self._history_size = history_size
        self._history_ttl_ms = int(history_ttl * 1000)
        self._history_ttl = history_ttl
        self._client: aioredis.Redis | None = None
        self._script: Any = None
        self._on_publication: OnPublication | None = None
        self._kinds: dict[str, ChannelKind] = {}
        self._link: Link | None = None

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def ready(self) -> bool:
        return self._link is not None and self._link.ready

    @property
    def reconnects(self) -> int:
        return self._link.reconnects if self._link is not None else 0

    async def start(self, on_publication: OnPublication, on_resubscribed: OnResubscribed) -> None:
        self._on_publication = on_publication
        # RESP2 pinned: the pub/sub reader expects messages as plain replies, and RESP3 would
        # route them to redis-py's push handlers instead.
        # A blocking pool: a burst of concurrent publishes waits for a connection instead of
        # failing with "Too many connections" (redis-py's default pool raises past its cap).
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url, protocol=2, max_connections=64, timeout=10
        )
        self._client = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self._script = self._client.register_script(_PUBLISH)
        self._link = PubSubLink(pool, self._prefix, self._message, on_resubscribed)
        self._link.start()

    def _message(self, channel: str, payload: bytes) -> None:
        kind = self._kinds.get(channel)
        if kind is not None and self._on_publication is not None:
            self._on_publication(parse_payload(channel, kind, payload))

    async def close(self) -> None:
        if self._link is not None:
            await self._link.close()
            self._link = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def key(self, what: str, channel: str) -> str:
        """The Redis key of `channel`'s `what` (seq, latest, history) or its pub/sub channel
        (ch), as laid out in the module docstring."""
        return f"{self._prefix}{what}:{channel}"

    def _script_call(
        self, channel: str, kind: ChannelKind, type_: str, data: bytes
    ) -> tuple[list[str], list[Any]]:
        reliable = kind is ChannelKind.RELIABLE
        keys = [
            self.key("seq", channel),
            self.key("history" if reliable else "latest", channel),
            self.key("ch", channel),
        ]
        args = [
            "r" if reliable else "l",
            type_.encode() + b"\n" + data,
            self._history_size,
            self._history_ttl_ms,
        ]
        return keys, args

    async def publish(self, channel: str, kind: ChannelKind, type_: str, data: bytes) -> int:
        if self._script is None:
            raise BrokerUnavailable("redis broker is not started")
        keys, args = self._script_call(channel, kind, type_, data)
        try:
            return int(await self._script(keys=keys, args=args))
        except RedisError as exc:
            raise BrokerUnavailable(f"publish to redis failed: {exc}") from exc

    async def publish_many(self, items: Sequence[tuple[str, ChannelKind, str, bytes]]) -> None:
        if self._script is None or self._client is None:
            raise BrokerUnavailable("redis broker is not started")
        if not items:
            return
        # One pipeline (not a transaction): each script call is atomic on its own, and Redis
        # runs them in the order sent, so a channel's publications keep their order.
        pipe = self._client.pipeline(transaction=False)
        for item in items:
            keys, args = self._script_call(*item)
            await self._script(keys=keys, args=args, client=pipe)  # buffers, no I/O yet
        try:
            await pipe.execute()
        except RedisError as exc:
            raise BrokerUnavailable(f"publish to redis failed: {exc}") from exc
        finally:
            # Give the connection back even when cancelled mid-call (shutdown): a pipeline that
            # still holds one complains when it is garbage-collected.
            await pipe.reset()  # type: ignore[no-untyped-call]

    def want(self, channel: str, kind: ChannelKind) -> None:
        self._kinds[channel] = kind
        if self._link is not None:
            self._link.want(channel)

    def unwant(self, channel: str) -> None:
        self._kinds.pop(channel, None)
        if self._link is not None:
            self._link.unwant(channel)

    def active(self, channels: Sequence[str]) -> bool:
        return self._link is not None and self._link.active(channels)

    async def wait_active(self, channels: Sequence[str]) -> None:
        if self._link is None:
            raise BrokerUnavailable("redis broker is not started")
        await self._link.wait_active(channels)

    async def snapshots(self, requests: Sequence[SnapshotRequest]) -> list[Snapshot]:
        if self._client is None:
            raise BrokerUnavailable("redis broker is not started")
        # One MULTI/EXEC: the seq counter and the history are read at the same instant.
        pipe = self._client.pipeline(transaction=True)
        pipe.time()
        for request in requests:
            pipe.get(self.key("seq", request.channel))
            if request.kind is ChannelKind.LATEST:
                pipe.get(self.key("latest", request.channel))
            elif request.since is not None:
                pipe.xrange(self.key("history", request.channel), min=f"{request.since + 1}-0")
        try:
            results = await pipe.execute()
        except RedisError as exc:
            raise BrokerUnavailable(f"reading channel state from redis failed: {exc}") from exc
        finally:
            await pipe.reset()  # type: ignore[no-untyped-call]
        now = float(results[0][0])
        cursor = 1
        snapshots = []
        for request in requests:
            last_seq = int(results[cursor] or 0)
            cursor += 1
            if request.kind is ChannelKind.LATEST:
                raw = results[cursor]
                cursor += 1
                latest = [parse_payload(request.channel, request.kind, raw)] if raw else []
                snapshots.append(Snapshot(last_seq, latest, recovered=True))
            elif request.since is None:
                snapshots.append(Snapshot(last_seq, [], recovered=True))
            else:
                entries = results[cursor]
                cursor += 1
                snapshots.append(self._recover(request, last_seq, entries, now))
        return snapshots

    def _recover(
        self, request: SnapshotRequest, last_seq: int, entries: list[Any], now: float
    ) -> Snapshot:
        since = request.since or 0
        if since == last_seq:
            return Snapshot(last_seq, [], recovered=True)
        if since > last_seq or not entries:
            return Snapshot(last_seq, [], recovered=False)
        first_fields = entries[0][1]
        first_seq = int(entries[0][0].split(b"-", 1)[0])
        if first_seq != since + 1 or float(first_fields[b"t"]) < now - self._history_ttl:
            return Snapshot(last_seq, [], recovered=False)
        publications = [parse_payload(request.channel, request.kind, f[b"p"]) for _, f in entries]
        return Snapshot(last_seq, publications, recovered=True)
