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
from collections.abc import Awaitable, Sequence
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
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._reopen = asyncio.Lock()
        self.dead_lettered = 0
        self.retried = 0

    def stats(self) -> dict[str, int]:
        return {"retried": self.retried, "dead_lettered": self.dead_lettered}

    def _name(self, name: str) -> str:
        return self._prefix + name

    async def start(self) -> None:
        await self._exchange_ready()

    async def _connection_ready(self) -> aio_pika.abc.AbstractConnection:
        # A plain connection, re-made here when it is gone: aio-pika's robust connection can
        # end up closed for good after `rabbitmqctl stop_app` (its restore callback fails), and
        # then never recovers; owning the reconnect keeps recovery simple and visible.
        if self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect(self._url, timeout=10)
        return self._connection

    async def _reset(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = self._exchange = None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2.0)

    async def _exchange_ready(self) -> aio_pika.abc.AbstractExchange:
        """The publishing channel, reopened (with its connection) when it closed."""
        if self._exchange is not None and self._channel is not None and not self._channel.is_closed:
            return self._exchange
        async with self._reopen:
            if self._channel is None or self._channel.is_closed:
                connection = await self._connection_ready()
                self._channel = await connection.channel(publisher_confirms=True)
                self._exchange = await self._declare(self._channel)
        assert self._exchange is not None
        return self._exchange

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
        # `connected` is cleared while a robust connection is down and reconnecting;
        # `is_closed` only says whether it was closed on purpose.
        connection = self._connection
        return connection is not None and connection.connected.is_set() and not connection.is_closed

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

    async def depth(self) -> int:
        """Ready messages in the work queue (a passive declare: one round trip)."""
        exchange = await self._exchange_ready()
        assert self._channel is not None and exchange is not None
        queue = await self._channel.declare_queue(self._name(WORK), passive=True)
        count = queue.declaration_result.message_count
        return int(count or 0)

    async def _send(self, body: bytes, routing_key: str, retries: int) -> None:
        try:
            exchange = await self._exchange_ready()
        except Exception:
            await self._reset()
            raise
        message = aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            headers={RETRIES_HEADER: retries},
        )
        # With publisher confirms on, this returns once the broker has taken responsibility.
        try:
            await exchange.publish(message, routing_key=routing_key, timeout=self._timeout)
        except Exception:
            await self._reset()  # the next publish reconnects
            raise

    async def consume(self, handler: MessageHandler) -> None:
        """Consume until cancelled, reopening the channel whenever it closes for good. The
        broker delivers at most `prefetch` unacked messages, so that many are handled at once:
        each spends most of its time waiting on the database."""
        running: set[asyncio.Task[None]] = set()

        def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.create_task(self._handle(message, handler))
            running.add(task)
            task.add_done_callback(running.discard)

        async def deliver(message: AbstractIncomingMessage) -> None:
            on_message(message)

        try:
            while True:
                try:
                    connection = await self._connection_ready()
                    channel = await connection.channel(publisher_confirms=True)
                    await channel.set_qos(prefetch_count=self._prefetch)
                    await self._declare(channel)
                    queue = await channel.get_queue(self._name(WORK), ensure=False)
                    await queue.consume(deliver)
                    while True:  # polled: a closed robust channel fires no event we can rely on
                        await asyncio.sleep(1.0)
                        if channel.is_closed:
                            break
                    log.warning("consumer channel closed; reopening")
                except Exception as exc:  # whatever the client raised: start over
                    log.warning("cannot consume, retrying", error=repr(exc))
                    await self._reset()
                await asyncio.sleep(1.0)
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
                await _settle(message.nack(requeue=True))
                return
        await _settle(message.ack())


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


async def _settle(settling: Awaitable[None]) -> None:
    """Ack or nack; if the channel is gone, RabbitMQ redelivers the message, and processing it
    again is harmless (the worker is idempotent)."""
    try:
        await settling
    except Exception as exc:
        log.warning("could not settle a message; it will be redelivered", error=repr(exc))
