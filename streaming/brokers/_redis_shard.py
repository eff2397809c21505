"""One shard's pub/sub connection on a Redis Cluster (its master), and the hash tag that puts a
channel's keys and pub/sub channel in one slot. `ShardedLink` (_redis_shards.py) routes channels
to these links.

A master that gives a slot away (a failover, a resharding) says so with `sunsubscribe`, and one
that does not own a slot answers SSUBSCRIBE with MOVED. Either way the channels are displaced:
not subscribed here again until the coordinator has a new slot map (it moves them to their new
master), nor on a connection to a node that is no longer a master. A replica would accept the
subscription, but while roles change its new master may not forward it every publication yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from redis.asyncio.cluster import ClusterNode
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MovedError, ResponseError

from streaming.brokers._redis_pubsub import PubSubLink
from streaming.brokers.base import OnResubscribed

log = logging.getLogger("streaming.redis")

#: Seconds after which a displaced channel that the slot map still places on the same master is
#: subscribed there again (the slot went away and came back before the map noticed).
DISPLACED_RETRY = 5.0


def hash_tag(channel: str) -> str:
    """`{<channel>}`, with `%`, `{` and `}` percent-encoded so the tag is the whole channel name
    (an empty channel, which the protocol never allows, gets a tag of its own)."""
    if not channel:
        return "{%}"
    if "%" in channel or "{" in channel or "}" in channel:
        channel = channel.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return "{" + channel + "}"


def untag(tag: bytes) -> str:
    """The channel named by a hash tag (inverse of `hash_tag`)."""
    text = tag[1:-1].decode()
    if "%" in text:
        text = text.replace("%7D", "}").replace("%7B", "{").replace("%25", "%")
    return text


class ShardLink(PubSubLink):
    """The pub/sub connection to one master: SSUBSCRIBE, one command per slot."""

    SUBSCRIBED, UNSUBSCRIBED = b"ssubscribe", b"sunsubscribe"

    def __init__(
        self,
        node: ClusterNode,
        prefix: str,
        on_message: Callable[[str, bytes], None],
        on_resubscribed: OnResubscribed,
        on_lost: Callable[[], None],
    ) -> None:
        super().__init__(node, prefix, on_message, on_resubscribed)
        self.node = node
        self._on_lost = on_lost
        #: SUNSUBSCRIBEs sent and not yet confirmed, per channel; any other `sunsubscribe`
        #: comes from the server (it no longer owns the slot).
        self._unsubscribing: dict[str, int] = {}
        #: Wanted channels this master gave away or refused, and since when (monotonic).
        self._displaced: dict[str, float] = {}
        #: Times this master dropped subscriptions (a failover drops a shard's channels in one
        #: burst: counted once, until subscriptions are sent again).
        self._drops = 0
        self._dropping = False

    @property
    def reconnects(self) -> int:
        return super().reconnects + self._drops

    @property
    def channels(self) -> list[str]:
        return list(self._wanted)

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"streaming-redis-shard-{self.node.name}"
        )

    def pubsub_channel(self, channel: str) -> str:
        return f"{self._prefix}ch:{hash_tag(channel)}"

    def unwant(self, channel: str) -> None:
        self._displaced.pop(channel, None)
        super().unwant(channel)

    def retry(self, channel: str) -> None:
        """The slot map still places `channel` here: subscribe again if it was displaced long
        enough ago for the map to have caught up with any failover."""
        since = self._displaced.get(channel)
        if since is not None and time.monotonic() - since > DISPLACED_RETRY:
            del self._displaced[channel]
            self._dirty.set()

    def _lost(self) -> None:
        self._on_lost()

    async def _check(self, conn: Any) -> None:
        await conn.send_command("ROLE")
        role = await conn.read_response()
        if role[0] != b"master":
            raise RedisConnectionError(f"{self.node.name} is no longer a master")
        self._displaced.clear()
        self._unsubscribing.clear()

    def _unsent(self) -> list[str]:
        displaced = self._displaced
        return [c for c in self._wanted if c not in self._sent and c not in displaced]

    async def _read(self, conn: Any) -> None:
        prefix_len = len(self._channel_prefix)
        on_message = self._on_message
        while True:
            try:
                response = await conn.read_response()
            except ResponseError as exc:  # MOVED: our slot map was stale
                self._refused(exc)
                continue
            if isinstance(response, list) and response[0] == b"smessage":
                on_message(untag(response[1][prefix_len:]), response[2])
            else:
                self._control(response)

    def _channel_of(self, name: bytes) -> str:
        return untag(name[len(self._channel_prefix) :])

    def _unsubscribed(self, channel: str) -> None:
        self._confirmed.discard(channel)
        pending = self._unsubscribing.pop(channel, 0)
        if pending > 1:
            self._unsubscribing[channel] = pending - 1
        if not pending and channel in self._sent:  # not ours: the master gave the slot away
            if not self._dropping:
                self._dropping = True
                self._drops += 1
            self._displace([channel])

    def _refused(self, exc: ResponseError) -> None:
        log.info("redis shard %s refused a subscription: %s", self.node.name, exc)
        if isinstance(exc, MovedError):
            self._displace([c for c in self._sent if self._slot(c) == exc.slot_id])
        else:
            self._on_lost()

    def _displace(self, channels: list[str]) -> None:
        now = time.monotonic()
        for channel in channels:
            self._sent.discard(channel)
            self._confirmed.discard(channel)
            event = self._wanted.get(channel)
            if event is not None:
                event.clear()
                self._displaced[channel] = now
        self._on_lost()

    def _slot(self, channel: str) -> int:
        return key_slot(self.pubsub_channel(channel).encode())

    def _batches(self, channels: list[str]) -> Iterator[list[str]]:
        # One SSUBSCRIBE may only name channels of one slot (else CROSSSLOT).
        by_slot: dict[int, list[str]] = {}
        for channel in channels:
            by_slot.setdefault(self._slot(channel), []).append(channel)
        for group in by_slot.values():
            yield from super()._batches(group)

    async def _subscribe(self, conn: Any, channels: list[str]) -> None:
        self._dropping = False
        await self._send(conn, "SSUBSCRIBE", channels)

    async def _unsubscribe(self, conn: Any, channels: list[str]) -> None:
        for channel in channels:
            self._unsubscribing[channel] = self._unsubscribing.get(channel, 0) + 1
        await self._send(conn, "SUNSUBSCRIBE", channels)
