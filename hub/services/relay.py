"""The outbox relay: delivers committed outbox rows to the work queue and the fan-out engine,
marking them sent only after the broker confirmed them.

Writers call `kick()` right after their commit, so the usual latency is one publish, not a poll
interval; the periodic poll is the safety net that picks up whatever a crashed process or an
unreachable broker left behind. Several relays may run at once (rows are claimed with SKIP
LOCKED), so every API and worker process runs one. A drained batch costs two database round
trips (claim, then delete what went out), its work messages are published concurrently and
confirmed together, and its stream rows go out in one pipelined broker call.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import structlog

from hub.services import messages
from hub.services.ports import Publisher
from hub.services.trading_ports import Outbox, OutboxRow, WorkQueue

log = structlog.get_logger("hub.relay")


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        queue: WorkQueue,
        publisher: Publisher,
        *,
        batch: int = 200,
        poll_interval: float = 1.0,
        max_backoff: float = 10.0,
    ) -> None:
        self._outbox = outbox
        self._queue = queue
        self._publisher = publisher
        self._batch = batch
        self._poll = poll_interval
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self.sent = 0
        self.failures = 0

    def kick(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        backoff = self._poll
        while True:
            self._wake.clear()
            try:
                while await self._outbox.drain(self._batch, self._publish) > 0:
                    pass
                backoff = self._poll
            except Exception as exc:
                self.failures += 1
                backoff = min(backoff * 2, self._max_backoff)
                log.warning("outbox relay failed, retrying", error=repr(exc), retry_in=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)

    async def _publish(self, rows: list[OutboxRow]) -> list[int]:
        """Publish each row; return the ids that made it. Order work goes out concurrently
        (each awaits its own confirm); stream rows keep their order, per channel."""

        async def work(row: OutboxRow) -> int | None:
            try:
                await self._queue.publish(row.body)
                return row.id
            except Exception as exc:
                log.warning("order message not published", outbox_id=row.id, error=repr(exc))
                return None

        jobs = [work(r) for r in rows if r.topic == messages.ORDERS_TOPIC]
        sent = [i for i in await asyncio.gather(*jobs) if i is not None]
        stream: list[tuple[str, str, msgspec.Raw]] = []
        stream_ids: list[int] = []
        for row in rows:
            if row.topic != messages.STREAM_TOPIC:
                continue
            try:
                m = messages.stream_messages.decode(row.body)
            except msgspec.DecodeError:
                log.error("undecodable stream row dropped", outbox_id=row.id)
                sent.append(row.id)
                continue
            stream.append((m.channel, m.type, m.data))
            stream_ids.append(row.id)
        if stream:
            try:
                await self._publisher.publish_many(stream)
                sent += stream_ids
            except Exception as exc:
                # All of them go again on the next round, in order (some may go twice: the
                # clients drop an order event whose version they have seen).
                log.warning("stream publications failed", rows=len(stream), error=repr(exc))
        self.sent += len(sent)
        return sent
