"""The node's single Redis pub/sub connection, with reference-counted upstream subscriptions.

The engine calls `want`/`unwant` when a channel gets its first / loses its last local subscriber;
a reconciler sends batched SUBSCRIBE/UNSUBSCRIBE for the difference. On reconnect every wanted
channel is subscribed again, and `on_resubscribed` lets the engine fill the gap from history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streaming.brokers.base import OnResubscribed

log = logging.getLogger("streaming.redis")

#: Seconds between PINGs on the pub/sub connection; three missed answers force a reconnect.
HEALTH_INTERVAL = 5.0
#: Channel names per SUBSCRIBE command when (re)subscribing in bulk.
SUBSCRIBE_BATCH = 500
_BACKOFF_MAX = 5.0


class PubSubLink:
    """Owns the pub/sub socket and its background task (started/stopped by RedisBroker)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        on_message: Callable[[str, bytes], None],
        on_resubscribed: OnResubscribed,
    ) -> None:
        self._client = client
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

    def want(self, channel: str) -> None:
        event = asyncio.Event()
        if channel in self._sent and channel in self._confirmed:
            event.set()
        self._wanted[channel] = event
        self._dirty.set()

    def unwant(self, channel: str) -> None:
        self._wanted.pop(channel, None)
        self._dirty.set()

    def active(self, channels: Sequence[str]) -> bool:
        wanted = self._wanted
        for channel in channels:
            event = wanted.get(channel)
            if event is not None and not event.is_set():
                return False
        return True

    async def wait_active(self, channels: Sequence[str]) -> None:
        for channel in channels:
            event = self._wanted.get(channel)
            if event is not None:
                await event.wait()

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
            # A connection that worked restarts the backoff; repeated failures slow down.
            backoff = 0.05 if self._connected_recently else min(backoff * 2, _BACKOFF_MAX)
            await asyncio.sleep(backoff)

    async def _session(self) -> None:
        pool = self._client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs.update(socket_timeout=None, client_name=self._client_name(), protocol=2)
        conn = pool.connection_class(**kwargs)
        self._connected_recently = False
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
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
        while True:
            response = await conn.read_response()
            if not isinstance(response, list):
                # Outside subscribed mode (no channel wanted yet, e.g. a publishing-only
                # process) Redis answers PING with a plain PONG, not ["pong", ""].
                if response == b"PONG":
                    self._last_pong = time.monotonic()
                continue
            kind = response[0]
            if kind == b"message":
                self._on_message(response[1][prefix_len:].decode(), response[2])
            elif kind == b"subscribe":
                channel = response[1][prefix_len:].decode()
                self._confirmed.add(channel)
                event = self._wanted.get(channel)
                if event is not None and channel in self._sent and not event.is_set():
                    event.set()
                    self._on_resubscribed(channel)
            elif kind == b"unsubscribe":
                self._confirmed.discard(response[1][prefix_len:].decode())
            elif kind == b"pong":
                self._last_pong = time.monotonic()

    async def _reconcile(self, conn: Any) -> None:
        last_ping = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEALTH_INTERVAL):
                    await self._dirty.wait()
            self._dirty.clear()
            subscribe = [c for c in self._wanted if c not in self._sent]
            unsubscribe = [c for c in self._sent if c not in self._wanted]
            for i in range(0, len(subscribe), SUBSCRIBE_BATCH):
                batch = subscribe[i : i + SUBSCRIBE_BATCH]
                self._sent.update(batch)
                await conn.send_command("SUBSCRIBE", *(self.pubsub_channel(c) for c in batch))
            for i in range(0, len(unsubscribe), SUBSCRIBE_BATCH):
                batch = unsubscribe[i : i + SUBSCRIBE_BATCH]
                self._sent.difference_update(batch)
                await conn.send_command("UNSUBSCRIBE", *(self.pubsub_channel(c) for c in batch))
            now = time.monotonic()
            if now - self._last_pong > 3 * HEALTH_INTERVAL:
                raise TimeoutError("redis pub/sub connection stopped answering PING")
            if now - last_ping >= HEALTH_INTERVAL:
                last_ping = now
                await conn.send_command("PING")
