"""The submit side of the trading core in PostgreSQL: one read and one write, no lock held
across round trips.

The read (account, position, Idempotency-Key record) is a plain snapshot. The write is
ONE statement: a conditional UPDATE takes the reservation only if the buying power (or the
shares) is still there, and the order, its event, its outbox rows and the idempotency record are
inserted from that UPDATE's result, so either all of it happens or none. The row lock it takes
lasts for that statement only, where the old submit held the account lock across eight.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec

from hub.adapters.postgres.rows import (
    ACCOUNT_COLUMNS,
    ORDER_COLUMNS,
    ORDER_FIELDS,
    ORDER_TYPES,
    order_values,
    to_account,
)
from hub.domain.errors import DuplicateClientOrderId
from hub.domain.orders import Order, OrderEvent, Side
from hub.domain.positions import Position
from hub.services.errors import IdempotencyConflict
from hub.services.trading_ports import (
    HANDOVER_LEASE_S,
    IdempotencyRecord,
    OutboxRow,
    Placement,
    SubmitSnapshot,
)

_encoder = msgspec.json.Encoder()
_order_decoder = msgspec.json.Decoder(Order)
event_decoder = msgspec.json.Decoder(OrderEvent)
# An idempotency record is the request's fingerprint and the order as placed: the Order's JSON,
# in `body`. The `status` column is from when the record was the HTTP response: records written
# now hold PLACED_ORDER there. Older ones hold 202 and the answer's JSON (an OrderView); for
# those the order as placed is read from its first event (the audit trail keeps it).
PLACED_ORDER = 0
_FIRST_EVENT = "SELECT body FROM order_events WHERE order_id = $1 ORDER BY seq LIMIT 1"
_SNAPSHOT = (
    f"SELECT {', '.join('a.' + c.strip() for c in ACCOUNT_COLUMNS.split(','))},"
    " p.qty, p.reserved_qty, p.avg_entry_price, p.realized_pl,"
    " k.fingerprint, k.status, k.body"
    " FROM accounts a"
    " LEFT JOIN positions p ON p.account_id = a.id AND p.symbol = $2"
    " LEFT JOIN idempotency_keys k ON k.user_id = a.user_id AND k.key = $3"
    " WHERE a.user_id = $1"
)


def _place_sql(side: Side) -> str:
    n = len(ORDER_FIELDS)
    # $n+1.. : event (id, type, at, body), outbox (topics, bodies), key, fingerprint, order
    e, b, k = n + 1, n + 5, n + 7
    col = {name: f"${i}::{ORDER_TYPES[name]}" for i, name in enumerate(ORDER_FIELDS, 1)}
    if side is Side.BUY:
        cash = col["reserved_cash"]
        reserve = (
            f"UPDATE accounts SET reserved_cash = reserved_cash + {cash}"
            f" WHERE id = {col['account_id']} AND cash - reserved_cash >= {cash} RETURNING id"
        )
    else:
        qty = col["reserved_qty"]
        reserve = (
            f"UPDATE positions SET reserved_qty = reserved_qty + {qty}, updated_at = now()"
            f" WHERE account_id = {col['account_id']} AND symbol = {col['symbol']}"
            f" AND qty - reserved_qty >= {qty} RETURNING account_id"
        )
    return (
        f"WITH r AS ({reserve}),"
        f" o AS (INSERT INTO orders ({ORDER_COLUMNS}) SELECT {', '.join(col.values())} FROM r"
        " RETURNING id),"
        " e AS (INSERT INTO order_events (id, order_id, type, at, body)"
        f" SELECT ${e}::uuid, o.id, ${e + 1}::text, ${e + 2}::timestamptz, ${e + 3}::jsonb"
        " FROM o),"
        " b AS (INSERT INTO outbox (topic, body, claimed_until)"
        f" SELECT t.topic, t.body, now() + interval '{HANDOVER_LEASE_S} seconds'"
        f" FROM o, unnest(${b}::text[], ${b + 1}::bytea[]) WITH ORDINALITY AS t(topic, body, n)"
        " ORDER BY t.n RETURNING id),"
        " k AS (INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at)"
        f" SELECT {col['user_id']}, ${k}::text, ${k + 1}::text, {PLACED_ORDER}, ${k + 2}::bytea,"
        f" now() FROM o WHERE ${k}::text IS NOT NULL)"
        " SELECT array_agg(id ORDER BY id) FROM b"
    )


_PLACE = {side: _place_sql(side) for side in Side}


class PostgresOrderDesk:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def snapshot(self, user_id: UUID, symbol: str, key: str | None) -> SubmitSnapshot:
        row = await self._pool.fetchrow(_SNAPSHOT, user_id, symbol, key)
        if row is None:
            return SubmitSnapshot(None, None, None)
        account = to_account(row)
        position = None
        if row["qty"] is not None:
            position = Position(
                account_id=account.id,
                user_id=user_id,
                symbol=symbol,
                qty=row["qty"],
                reserved_qty=row["reserved_qty"],
                avg_entry_price=row["avg_entry_price"],
                realized_pl=row["realized_pl"],
            )
        stored = None
        if row["fingerprint"] is not None:
            stored = IdempotencyRecord(row["fingerprint"], await self._placed(row))
        return SubmitSnapshot(account, position, stored)

    async def _placed(self, record: asyncpg.Record) -> Order:
        if record["status"] == PLACED_ORDER:
            return _order_decoder.decode(record["body"])
        order_id = UUID(msgspec.json.decode(record["body"])["id"])
        return event_decoder.decode(await self._pool.fetchval(_FIRST_EVENT, order_id)).order

    async def place(self, placement: Placement) -> list[OutboxRow] | None:
        order, event, key = placement.order, placement.event, placement.key
        args = [
            *order_values(order),
            event.id,
            event.type.value,
            event.at,
            _encoder.encode(event).decode(),
            [topic for topic, _ in placement.outbox],
            [body for _, body in placement.outbox],
            key,
            placement.fingerprint if key is not None else None,
            _encoder.encode(order) if key is not None else None,
        ]
        try:
            ids: list[int] | None = await self._pool.fetchval(_PLACE[order.side], *args)
        except asyncpg.UniqueViolationError as exc:
            if exc.table_name == "idempotency_keys":
                raise IdempotencyConflict(
                    "the Idempotency-Key was stored by another request"
                ) from exc
            raise DuplicateClientOrderId(
                f"client_order_id {order.client_order_id!r} is already used"
            ) from exc
        if not ids:
            return None
        # Serial ids follow the insertion order, which is the order given.
        return [OutboxRow(i, t, b) for i, (t, b) in zip(ids, placement.outbox, strict=True)]
