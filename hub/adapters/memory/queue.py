"""The embedded twin of the RabbitMQ work queue: an asyncio queue with the same retry ladder."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from hub.services.trading_ports import MessageHandler

log = structlog.get_logger("hub.queue")


class MemoryWorkQueue:
    def __init__(
        self, retry_delays: Sequence[float] = (0.5, 2.0, 5.0, 10.0), concurrency: int = 128
    ) -> None:
        self._concurrency = concurrency
        self._queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
        self._delays = tuple(retry_delays)
        self._timers: set[asyncio.Task[None]] = set()
        self.dead: list[bytes] = []
        self.retried = 0

    def stats(self) -> dict[str, int]:
        return {"retried": self.retried, "dead_lettered": len(self.dead)}

    async def publish(self, body: bytes) -> None:
        self._queue.put_nowait((body, 0))

    async def depth(self) -> int:
        return self._queue.qsize()

    async def consume(self, handler: MessageHandler) -> None:
        """Handle up to `concurrency` messages at once, as RabbitMQ's prefetch allows (the
        processor group-commits what is in hand, so this is also the largest batch)."""

        async def one_consumer() -> None:
            while True:
                body, attempt = await self._queue.get()
                try:
                    await handler(body)
                except Exception as exc:
                    self._retry(body, attempt, exc)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self._concurrency):
                    group.create_task(one_consumer())
        finally:
            for timer in self._timers:
                timer.cancel()

    def _retry(self, body: bytes, attempt: int, exc: Exception) -> None:
        if attempt >= len(self._delays):
            self.dead.append(body)
            log.error("order message dead-lettered", attempts=attempt + 1, error=repr(exc))
            return
        self.retried += 1
        log.warning("order message failed, retrying", attempt=attempt + 1, error=repr(exc))

        async def later() -> None:
            await asyncio.sleep(self._delays[attempt])
            self._queue.put_nowait((body, attempt + 1))

        timer = asyncio.create_task(later())
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)
