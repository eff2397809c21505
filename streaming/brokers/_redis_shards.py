"""Sharded pub/sub on a Redis Cluster: one pub/sub connection per shard (master) this node needs.

A channel's pub/sub channel carries its hash tag (`<prefix>ch:{<channel>}`), so it lives in
the slot of the channel's keys and is served by the master that owns that slot; SSUBSCRIBE
there (_redis_shard.py), SPUBLISH inside the publish script. `ShardedLink` routes each wanted
channel to the link of its slot's master (redis-py's slot map), and re-routes when the topology
changes:

- a shard's connection fails (its master died): the link keeps reconnecting (to a master only)
  while the slot map is refreshed, every half second until a replica has been promoted;
  channels whose slot moved are then subscribed on the new master;
- a master gives up a slot (a failover, a resharding) and says so with `sunsubscribe`, or
  refuses a subscription with MOVED: the link sets those channels aside, and the same refresh
  moves them.

Each channel keeps one "live" event across moves; it is clear while the channel is not
subscribed anywhere, and set again by the link that gets the confirmation, which also reports
the channel through `on_resubscribed` so the engine fills the gap from history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from streaming.brokers._redis_shard import ShardLink, hash_tag
from streaming.brokers.base import OnResubscribed, all_active, wait_all_active

log = logging.getLogger("streaming.redis")

#: Seconds between slot-map refreshes while some shard is unreachable, and after any trouble
#: (once more: the node asked first may not have heard of a failover yet).
REFRESH_INTERVAL = 0.5
#: Seconds between slot-map refreshes when all is well (replicas added, slots moved).
IDLE_REFRESH_INTERVAL = 10.0
#: What redis-py's cluster client raises when it cannot reach or map the cluster
#: (RedisClusterException is not a RedisError).
CLUSTER_ERRORS = (RedisError, RedisClusterException, OSError)


class ShardedLink:
    """The node's shard links, and the route of every wanted channel to one of them (the same
    interface as PubSubLink, which RedisBroker uses on a single Redis)."""

    def __init__(
        self,
        client: RedisCluster,
        prefix: str,
        on_message: Callable[[str, bytes], None],
        on_resubscribed: OnResubscribed,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        self._links: dict[str, ShardLink] = {}  # by node name ("host:port")
        self._events: dict[str, asyncio.Event] = {}  # wanted channel -> live delivery flows
        self._route: dict[str, ShardLink] = {}  # wanted channel -> the link following it
        self._unrouted: set[str] = set()  # wanted, but its slot has no known master now
        self._trouble = asyncio.Event()
        self._moves = 0  # channels moved to another shard, as re-established deliveries
        self._retired_reconnects = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return not self._unrouted and all(link.ready for link in self._links.values())

    @property
    def reconnects(self) -> int:
        links = sum(link.reconnects for link in self._links.values())
        return self._retired_reconnects + links + self._moves

    @property
    def shards(self) -> dict[str, list[str]]:
        """The channels followed on each master ("host:port")."""
        return {name: link.channels for name, link in self._links.items()}

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="streaming-redis-topology")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links))

    def want(self, channel: str) -> None:
        event = self._events[channel] = asyncio.Event()
        self._place(channel, event)

    def unwant(self, channel: str) -> None:
        self._events.pop(channel, None)
        self._unrouted.discard(channel)
        link = self._route.pop(channel, None)
        if link is not None:
            link.unwant(channel)

    def active(self, channels: Sequence[str]) -> bool:
        return all_active(self._events, channels)

    async def wait_active(self, channels: Sequence[str]) -> None:
        await wait_all_active(self._events, channels)

    def _owner(self, channel: str) -> ClusterNode | None:
        try:
            return self._client.get_node_from_key(f"{self._prefix}ch:{hash_tag(channel)}")
        except RedisClusterException:  # SlotNotCoveredError: the slot map is being rebuilt
            return None

    def _place(self, channel: str, event: asyncio.Event) -> None:
        """Route `channel` to its master's link (or park it until the slot map knows one)."""
        node = self._owner(channel)
        if node is None:
            self._unrouted.add(channel)
            self._trouble.set()
            return
        self._unrouted.discard(channel)
        link = self._links.get(node.name)
        if link is None:
            link = self._links[node.name] = ShardLink(
                node, self._prefix, self._on_message, self._on_resubscribed, self._trouble.set
            )
            link.start()
        self._route[channel] = link
        link.want(channel, event)

    async def _watch(self) -> None:
        """Refresh the slot map and re-route: when a link reports trouble, and once more a
        moment later (the node asked first may not have heard of a failover yet); every
        REFRESH_INTERVAL while some wanted channel is not live or channels moved; otherwise
        every IDLE_REFRESH_INTERVAL (replicas added, slots moved without errors)."""
        due, last, failing = 0, 0.0, False  # refreshes due soon
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REFRESH_INTERVAL if due else IDLE_REFRESH_INTERVAL):
                    await self._trouble.wait()
            if self._trouble.is_set():
                self._trouble.clear()
                due = 2
            due = max(due - 1, 0)
            await asyncio.sleep(max(0.0, last + REFRESH_INTERVAL - time.monotonic()))
            last = time.monotonic()
            try:
                moved = await self.refresh()
            except CLUSTER_ERRORS as exc:
                if not failing:  # once per outage, not twice a second
                    log.warning("redis cluster slot map unreadable (retrying): %s", exc)
                failing, due = True, max(due, 1)
                continue
            if failing:
                log.warning("redis cluster slot map read again")
                failing = False
            if moved or not self.active(list(self._events)):
                due = max(due, 1)  # e.g. a dead master whose replica is not promoted yet

    async def refresh(self) -> int:
        """Rebuild the client's slot map if the cluster's differs, and move the channels whose
        slot has another master now; return how many moved."""
        if await self._map_changed():
            await self._client.nodes_manager.initialize()
        return await self._reroute()

    async def _map_changed(self) -> bool:
        """Whether CLUSTER SLOTS (from one node) differs from the client's slot map. Asked
        first, because redis-py recycles every connection of its pools on each rebuild."""
        ranges = await self._client.execute_command("CLUSTER SLOTS")
        cache = self._client.nodes_manager.slots_cache
        covered = 0
        for (first, last), shard in ranges.items():
            want = [shard["primary"], *shard["replicas"]]
            for slot in (first, last):
                have = cache.get(slot)
                if have is None or [(n.host, n.port) for n in have] != want:
                    return True
            covered += last - first + 1
        return covered != len(cache)

    async def _reroute(self) -> int:
        """Move every wanted channel whose slot has another master now; return how many."""
        moved = 0
        for channel, event in list(self._events.items()):
            link = self._route.get(channel)
            node = self._owner(channel)
            if link is not None and node is not None and link.node.name == node.name:
                link.retry(channel)
                continue
            if link is not None:
                del self._route[channel]
                link.unwant(channel)
            event.clear()
            self._place(channel, event)
            if channel in self._route:
                moved += 1
        if moved:
            self._moves += 1
            log.warning(
                "redis cluster topology changed: %d channel(s) moved to other shards", moved
            )
        primaries = {node.name for node in self._client.get_primaries()}
        for name, link in list(self._links.items()):
            if not link.channels and name not in primaries:
                del self._links[name]
                self._retired_reconnects += link.reconnects
                await link.close()
        return moved
