"""The order work queue on RabbitMQ (aio-pika), topology declared here:

    exchange hub.orders (direct, durable)
      work      -> queue hub.orders.work            (quorum)
      retry.N   -> queue hub.orders.retry.N         (quorum, message TTL = delay N, dead-letters
                                                     back to hub.orders/work)
      dead      -> queue hub.orders.dead            (quorum; what exhausted every retry)

Publishing waits for the publisher confirm (with a timeout) and marks messages persistent.
Consumers ack manually after the handler's commit; a handler that raises sends the message one
rung down the retry ladder (or to the dead-letter queue), then acks the original.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage

from hub.services.trading_ports import MessageHandler

log = structlog.get_logger("hub.rabbitmq")

EXCHANGE = "hub.orders"
WORK = "hub.orders.work"
DEAD = "hub.orders.dead"
RETRIES_HEADER = "x-hub-retries"


class RabbitWorkQueue:
    def __init__(
        self,
        url: str,
        *,
        retry_delays: Sequence[float] = (300.0, 900.0, 3600.0, 21600.0),
        prefetch: int = 32,
        publish_timeout: float = 5.0,
        prefix: str = "",
    ) -> None:
        self._url = url
        self._delays = tuple(retry_delays)
        self._prefetch = prefetch
        self._timeout = publish_timeout
        self._prefix = prefix
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self.dead_lettered = 0
        self.retried = 0

    def _name(self, name: str) -> str:
        return self._prefix + name

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url, timeout=10)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._declare(channel)

    async def close(self, grace_s: float = 5.0) -> None:
        if self._connection is None:
            return
        # A robust connection that is busy reconnecting can take long to close; do not let it
        # hold the process hostage at shutdown.
        try:
            await asyncio.wait_for(self._connection.close(), grace_s)
        except TimeoutError:
            log.warning("RabbitMQ connection did not close in time", grace_s=grace_s)

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def _declare(
        self, channel: aio_pika.abc.AbstractChannel
    ) -> aio_pika.abc.AbstractExchange:
        exchange = await channel.declare_exchange(
            self._name(EXCHANGE), aio_pika.ExchangeType.DIRECT, durable=True
        )
        quorum: dict[str, Any] = {"x-queue-type": "quorum"}
        work = await channel.declare_queue(self._name(WORK), durable=True, arguments=quorum)
        await work.bind(exchange, "work")
        for rung, delay in enumerate(self._delays, 1):
            retry = await channel.declare_queue(
                self._name(f"{WORK}.retry.{rung}"),
                durable=True,
                arguments={
                    **quorum,
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": self._name(EXCHANGE),
                    "x-dead-letter-routing-key": "work",
                },
            )
            await retry.bind(exchange, f"retry.{rung}")
        dead = await channel.declare_queue(self._name(DEAD), durable=True, arguments=quorum)
        await dead.bind(exchange, "dead")
        return exchange

    async def publish(self, body: bytes) -> None:
        await self._send(body, "work", retries=0)

    async def _send(self, body: bytes, routing_key: str, retries: int) -> None:
        if self._exchange is None:
            raise ConnectionError("the work queue is not started")
        message = aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            headers={RETRIES_HEADER: retries},
        )
        # With publisher confirms on, this returns once the broker has taken responsibility.
        await self._exchange.publish(message, routing_key=routing_key, timeout=self._timeout)

    async def consume(self, handler: MessageHandler) -> None:
        assert self._connection is not None, "start() first"
        channel = await self._connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await channel.get_queue(self._name(WORK), ensure=False)
        # Up to `prefetch` messages are handled at once: each spends most of its time waiting on
        # the database, and one at a time would cap a worker at one order per round-trip chain.
        running: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self._prefetch)
        try:
            async with queue.iterator() as messages:
                async for message in messages:
                    await slots.acquire()
                    task = asyncio.create_task(self._handle(message, handler))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(lambda _: slots.release())
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _handle(self, message: AbstractIncomingMessage, handler: MessageHandler) -> None:
        try:
            await handler(message.body)
        except Exception as exc:
            raw = message.headers.get(RETRIES_HEADER, 0)
            retries = raw if isinstance(raw, int) else 0
            try:
                if retries < len(self._delays):
                    await self._send(message.body, f"retry.{retries + 1}", retries + 1)
                    self.retried += 1
                    log.warning("order message failed, retrying", rung=retries + 1, error=repr(exc))
                else:
                    await self._send(message.body, "dead", retries)
                    self.dead_lettered += 1
                    log.error("order message dead-lettered", retries=retries, error=repr(exc))
            except Exception as publish_exc:
                # Could not park it: leave it with RabbitMQ, which redelivers it.
                log.warning("cannot reroute failed message", error=repr(publish_exc))
                await message.nack(requeue=True)
                return
        await message.ack()


async def delete_topology(url: str, prefix: str = "", rungs: int = 8) -> None:
    """Delete the exchange and queues declared under `prefix` (for test and benchmark runs:
    quorum queues are heavy, and a small broker slows to a halt under hundreds of stale ones)."""
    names = [WORK, DEAD, *(f"{WORK}.retry.{n}" for n in range(1, rungs + 1))]
    connection = await aio_pika.connect_robust(url, timeout=10)
    try:
        for name in names:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                await channel.queue_delete(prefix + name)
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
            await channel.exchange_delete(prefix + EXCHANGE)
    finally:
        await connection.close()
