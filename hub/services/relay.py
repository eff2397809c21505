"""The outbox relay: delivers committed outbox rows to the work queue and the fan-out engine,
deleting them only after the broker confirmed them.

Writers hand the rows they just committed to `kick(rows)`: those rows were written leased to
this process, so they are published straight from memory, with no claim query, and then
deleted in one statement per batch. The periodic poll is the safety net: it claims rows whose
lease ran out (a process that died between commit and publish, a broker that was unreachable)
and rows written without a lease (`kick()` with none asks for a poll now). Several relays may
run at once (rows are claimed with SKIP LOCKED), so every API and worker process runs one.

A batch's order work goes out as one work message (one publish, one confirm), and its stream
rows in one pipelined broker call. Under load the batches grow by themselves: rows handed
over while a batch is being published form the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import msgspec
import structlog

from hub.services import messages
from hub.services.ports import Publisher
from hub.services.trading_ports import HANDOVER_LEASE_S, Outbox, OutboxRow, WorkQueue

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
        handover_lease: float = HANDOVER_LEASE_S,
    ) -> None:
        self._outbox = outbox
        self._queue = queue
        self._publisher = publisher
        self._batch = batch
        self._poll = poll_interval
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        # Rows handed over at commit, with the moment their lease runs out: past it another
        # relay may have claimed them, so this one leaves them to the poll instead of racing.
        self._handed: list[tuple[float, OutboxRow]] = []
        self._poll_now = True
        self._lease = handover_lease
        self.sent = 0
        self.failures = 0
        self.abandoned = 0  # handed rows left to the poll because their lease ran out

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "failures": self.failures, "abandoned": self.abandoned}

    def kick(self, rows: Sequence[OutboxRow] = ()) -> None:
        """Publish these committed rows now; with none, poll the outbox now."""
        if rows:
            # A little inside the lease the writer took: the clocks are not the database's.
            deadline = time.monotonic() + self._lease * 0.75
            self._handed.extend((deadline, row) for row in rows)
        else:
            self._poll_now = True
        self._wake.set()

    async def run(self) -> None:
        backoff = self._poll
        loop = asyncio.get_running_loop()
        next_poll = loop.time()
        while True:
            self._wake.clear()
            try:
                while self._handed:
                    now = time.monotonic()
                    fresh = [row for deadline, row in self._handed[: self._batch] if deadline > now]
                    self.abandoned += min(len(self._handed), self._batch) - len(fresh)
                    del self._handed[: self._batch]
                    if fresh:
                        await self._publish_handed(fresh)
                if self._poll_now or loop.time() >= next_poll:
                    self._poll_now = False
                    next_poll = loop.time() + self._poll
                    while await self._outbox.drain(self._batch, self._publish) > 0:
                        pass
                backoff = self._poll
            except Exception as exc:
                self.failures += 1
                backoff = min(backoff * 2, self._max_backoff)
                log.warning("outbox relay failed, retrying", error=repr(exc), retry_in=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)

    async def _publish_handed(self, rows: list[OutboxRow]) -> None:
        sent: list[int] = []
        try:
            sent = await self._publish(rows)
        finally:
            done = set(sent)
            # If this fails, the rows keep their lease and the poll republishes them once it
            # runs out: at least once.
            await self._outbox.settle(sent, [r.id for r in rows if r.id not in done])

    async def _publish(self, rows: list[OutboxRow]) -> list[int]:
        """Publish the rows; return the ids that made it. The batch's order work goes out as
        one work message (one publish, one confirm); stream rows in one pipelined call, in
        order, so each channel keeps its order."""
        work = [r for r in rows if r.topic == messages.ORDERS_TOPIC]
        sent: list[int] = []
        if work:
            body = work[0].body if len(work) == 1 else messages.combine([r.body for r in work])
            try:
                await self._queue.publish(body)
                sent += [r.id for r in work]
            except Exception as exc:
                log.warning("order work not published", rows=len(work), error=repr(exc))
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
