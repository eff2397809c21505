"""The node's single Redis pub/sub connection, with reference-counted upstream subscriptions.

The engine calls `want`/`unwant` when a channel gets its first / loses its last local subscriber;
a reconciler sends batched SUBSCRIBE/UNSUBSCRIBE for the difference. On reconnect every wanted
channel is subscribed again, and `on_resubscribed` lets the engine fill the gap from history.
The sharded link of a Redis Cluster (`_redis_shards.py`) reuses this, one per shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from redis.exceptions import RedisError

from streaming.brokers.base import OnResubscribed, all_active, wait_all_active

log = logging.getLogger("streaming.redis")

#: Seconds between PINGs on the pub/sub connection; three missed answers force a reconnect.
HEALTH_INTERVAL = 5.0
#: Channel names per SUBSCRIBE command when (re)subscribing in bulk.
SUBSCRIBE_BATCH = 500
_BACKOFF_MAX = 5.0


class PubSubLink:
    """Owns the pub/sub socket and its background task (started/stopped by RedisBroker).

    `source` says how to connect: anything with `connection_class` and `connection_kwargs`,
    i.e. the client's connection pool, or a cluster node.
    """

    #: The replies that confirm a (un)subscription (the sharded link's are `ssubscribe`...).
    SUBSCRIBED, UNSUBSCRIBED = b"subscribe", b"unsubscribe"

    def __init__(
        self,
        source: Any,
        prefix: str,
        on_message: Callable[[str, bytes], None],
        on_resubscribed: OnResubscribed,
    ) -> None:
        self._source = source
        self._prefix = prefix
        self._channel_prefix = f"{prefix}ch:".encode()
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        # Channel -> "live delivery is flowing" event. The engine reference-counts, so a channel
        # is here exactly while this node has at least one local subscriber.
        self._wanted: dict[str, asyncio.Event] = {}
        self._sent: set[str] = set()  # SUBSCRIBE sent on the current connection, not undone
        self._confirmed: set[str] = set()  # confirmed by Redis on the current connection
        self._dirty = asyncio.Event()
        self._connected = False
        self._connected_recently = False
        self._connections = 0
        self._last_pong = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._connected and all(event.is_set() for event in self._wanted.values())

    @property
    def reconnects(self) -> int:
        return max(self._connections - 1, 0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="streaming-redis-pubsub")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def pubsub_channel(self, channel: str) -> str:
        return f"{self._prefix}ch:{channel}"

    def want(self, channel: str, event: asyncio.Event | None = None) -> None:
        """Follow `channel`; `event` (a new one by default) is set while live delivery flows."""
        if event is None:
            event = asyncio.Event()
        if channel in self._sent and channel in self._confirmed:
            event.set()
        self._wanted[channel] = event
        self._dirty.set()

    def unwant(self, channel: str) -> None:
        self._wanted.pop(channel, None)
        self._dirty.set()

    def active(self, channels: Sequence[str]) -> bool:
        return all_active(self._wanted, channels)

    async def wait_active(self, channels: Sequence[str]) -> None:
        await wait_all_active(self._wanted, channels)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._session()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("redis pub/sub connection lost: %s", exc)
            self._connected = False
            for event in self._wanted.values():
                event.clear()
            self._lost()
            # A connection that worked restarts the backoff; repeated failures slow down.
            backoff = 0.05 if self._connected_recently else min(backoff * 2, _BACKOFF_MAX)
            await asyncio.sleep(backoff)

    def _lost(self) -> None:
        """The connection failed or ended (the sharded link tells its coordinator)."""

    async def _check(self, conn: Any) -> None:
        """A new connection is fit to subscribe on (the sharded link wants a master)."""

    async def _session(self) -> None:
        kwargs = dict(self._source.connection_kwargs)
        kwargs.update(socket_timeout=None, client_name=self._client_name(), protocol=2)
        conn = self._source.connection_class(**kwargs)
        self._connected_recently = False
        try:
            await conn.connect()
            await self._check(conn)
            self._sent.clear()
            self._confirmed.clear()
            self._connected = True
            self._connected_recently = True
            self._connections += 1
            self._last_pong = time.monotonic()
            self._dirty.set()
            reader = asyncio.create_task(self._read(conn))
            writer = asyncio.create_task(self._reconcile(conn))
            try:
                await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, writer):
                    task.cancel()
                results = await asyncio.gather(reader, writer, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    raise result
        finally:
            self._connected = False
            await conn.disconnect(nowait=True)

    def _client_name(self) -> str:
        # Named so operators (and tests) can find the pub/sub socket in CLIENT LIST.
        safe = "".join(c if c.isalnum() or c in "-_:." else "_" for c in self._prefix)
        return f"streaming-pubsub-{safe}"

    async def _read(self, conn: Any) -> None:
        prefix_len = len(self._channel_prefix)
        on_message = self._on_message
        while True:
            response = await conn.read_response()
            if isinstance(response, list) and response[0] == b"message":
                on_message(response[1][prefix_len:].decode(), response[2])
            else:
                self._control(response)

    def _channel_of(self, name: bytes) -> str:
        """The engine's channel for a pub/sub channel name."""
        return name[len(self._channel_prefix) :].decode()

    def _control(self, response: Any) -> None:
        """Anything but a message: a (un)subscribe confirmation, or the answer to a PING."""
        if not isinstance(response, list):
            # Outside subscribed mode (no channel wanted yet, e.g. a publishing-only
            # process) Redis answers PING with a plain PONG, not ["pong", ""].
            if response == b"PONG":
                self._last_pong = time.monotonic()
            return
        kind = response[0]
        if kind == self.SUBSCRIBED:
            channel = self._channel_of(response[1])
            self._confirmed.add(channel)
            event = self._wanted.get(channel)
            if event is not None and channel in self._sent and not event.is_set():
                event.set()
                self._on_resubscribed(channel)
        elif kind == self.UNSUBSCRIBED:
            self._unsubscribed(self._channel_of(response[1]))
        elif kind == b"pong":
            self._last_pong = time.monotonic()

    def _unsubscribed(self, channel: str) -> None:
        self._confirmed.discard(channel)

    def _batches(self, channels: list[str]) -> Iterator[list[str]]:
        """Groups of channels that one (UN)SUBSCRIBE command may carry."""
        for i in range(0, len(channels), SUBSCRIBE_BATCH):
            yield channels[i : i + SUBSCRIBE_BATCH]

    async def _send(self, conn: Any, command: str, channels: list[str]) -> None:
        """Send `command` for `channels`, batched, in one write."""
        commands = [(command, *map(self.pubsub_channel, b)) for b in self._batches(channels)]
        await conn.send_packed_command(conn.pack_commands(commands))

    async def _reconcile(self, conn: Any) -> None:
        last_ping = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEALTH_INTERVAL):
                    await self._dirty.wait()
            self._dirty.clear()
            subscribe = self._unsent()
            unsubscribe = [c for c in self._sent if c not in self._wanted]
            if subscribe:
                self._sent.update(subscribe)
                await self._subscribe(conn, subscribe)
            if unsubscribe:
                self._sent.difference_update(unsubscribe)
                await self._unsubscribe(conn, unsubscribe)
            now = time.monotonic()
            if now - self._last_pong > 3 * HEALTH_INTERVAL:
                raise TimeoutError("redis pub/sub connection stopped answering PING")
            if now - last_ping >= HEALTH_INTERVAL:
                last_ping = now
                await conn.send_command("PING")

    def _unsent(self) -> list[str]:
        """Wanted channels to subscribe now."""
        return [c for c in self._wanted if c not in self._sent]

    async def _subscribe(self, conn: Any, channels: list[str]) -> None:
        await self._send(conn, "SUBSCRIBE", channels)

    async def _unsubscribe(self, conn: Any, channels: list[str]) -> None:
        await self._send(conn, "UNSUBSCRIBE", channels)
