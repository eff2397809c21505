"""The outbox in PostgreSQL, drained by leases (claimed_until) taken with FOR UPDATE SKIP LOCKED
in one short statement, so that several relays can run side by side and none holds a row lock
while it waits for the broker. A row is deleted once the broker confirmed it: the audit trail is
order_events; the outbox is only transport, and at a thousand orders a second a table of sent
rows would grow by millions an hour."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from hub.services.trading_ports import OutboxRow

LEASE_S = 30  # how long a relay owns the rows it claimed before others may take them


class PostgresOutbox:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def drain(
        self, limit: int, publish: Callable[[list[OutboxRow]], Awaitable[list[int]]]
    ) -> int:
        # Claim in one short statement (a lease, not a lock held while publishing: that would
        # keep a transaction open across broker round trips), publish, then mark.
        rows = await self._pool.fetch(
            "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2),"
            " attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL"
            "   AND (claimed_until IS NULL OR claimed_until < now())"
            "   ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, topic, body",
            limit,
            LEASE_S,
        )
        if not rows:
            return 0
        claimed = sorted(
            (OutboxRow(r["id"], r["topic"], bytes(r["body"])) for r in rows), key=lambda r: r.id
        )
        sent: list[int] = []
        try:
            sent = await publish(claimed)
        finally:
            done = set(sent)
            await self.settle(sent, [r.id for r in claimed if r.id not in done])
        return len(sent)

    async def settle(self, sent: Sequence[int], failed: Sequence[int]) -> None:
        # One round trip for both: delete what went out, put the rest back in line at once
        # (rather than after the lease).
        await self._pool.execute(
            "WITH d AS (DELETE FROM outbox WHERE id = ANY($1::bigint[]))"
            " UPDATE outbox SET claimed_until = NULL WHERE id = ANY($2::bigint[])",
            list(sent),
            list(failed),
        )

    async def pending(self) -> int:
        count: int = await self._pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        return count
