"""The trading core in PostgreSQL: a unit of work over one connection and transaction (row locks
with SELECT ... FOR UPDATE, compare-and-set on the order version), with batch forms that lock
many rows per statement and write a whole batch in one statement. The read side is reader.py."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any
from uuid import UUID

import asyncpg

from hub.adapters.postgres.rows import (
    ACCOUNT_COLUMNS,
    ORDER_COLUMNS,
    ORDER_FIELDS,
    ORDER_TYPES,
    POSITION_COLUMNS,
    event_encoder,
    order_values,
    to_order,
    to_position,
)
from hub.domain.accounts import Account
from hub.domain.errors import DuplicateClientOrderId
from hub.domain.orders import Execution, Order, OrderEvent
from hub.domain.positions import Position
from hub.services.errors import ConcurrentUpdate
from hub.services.trading_ports import (
    HANDOVER_LEASE_S,
    Changes,
    OutboxRow,
)

_ORDER_PARAMS = ", ".join(f"${i}" for i in range(1, len(ORDER_FIELDS) + 1))
_ORDER_UPDATE = ", ".join(
    f"{name} = ${i}" for i, name in enumerate(ORDER_FIELDS, 1) if name not in ("id",)
)
_VERSION_PARAM = f"${len(ORDER_FIELDS) + 1}"


class PostgresUnitOfWork:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
        self._tx: Any = None

    async def __aenter__(self) -> PostgresUnitOfWork:
        self._conn = await self._pool.acquire()
        try:
            self._tx = self._conn.transaction()
            await self._tx.start()
        except BaseException:
            # Cancelled or failed before `async with` took over: give the connection back,
            # or pool.close() would wait for it forever.
            await self._pool.release(self._conn)
            self._conn = None
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if self._tx is not None:
                await self._tx.rollback()
        finally:
            await self._pool.release(self._conn)
            self._conn = None

    @property
    def conn(self) -> asyncpg.Connection:
        assert self._conn is not None, "use the unit of work inside `async with`"
        return self._conn

    async def commit(self) -> None:
        await self._tx.commit()
        self._tx = None

    async def account_for_update(self, user_id: UUID) -> Account | None:
        row = await self.conn.fetchrow(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE user_id = $1 FOR UPDATE", user_id
        )
        return None if row is None else Account(**dict(row))

    async def save_account(self, account: Account) -> None:
        await self.conn.execute(
            "UPDATE accounts SET cash = $2, reserved_cash = $3 WHERE id = $1",
            account.id,
            account.cash,
            account.reserved_cash,
        )

    async def position_for_update(self, account_id: UUID, symbol: str) -> Position | None:
        row = await self.conn.fetchrow(
            f"SELECT {POSITION_COLUMNS} FROM positions"
            " WHERE account_id = $1 AND symbol = $2 FOR UPDATE",
            account_id,
            symbol,
        )
        return None if row is None else to_position(row)

    async def save_position(self, position: Position) -> None:
        await self.conn.execute(
            f"INSERT INTO positions ({POSITION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (account_id, symbol) DO UPDATE SET qty = EXCLUDED.qty,"
            " reserved_qty = EXCLUDED.reserved_qty, avg_entry_price = EXCLUDED.avg_entry_price,"
            " realized_pl = EXCLUDED.realized_pl, updated_at = now()",
            position.account_id,
            position.user_id,
            position.symbol,
            position.qty,
            position.reserved_qty,
            position.avg_entry_price,
            position.realized_pl,
        )

    async def add_order(self, order: Order) -> None:
        try:
            await self.conn.execute(
                f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({_ORDER_PARAMS})",
                *order_values(order),
            )
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateClientOrderId(
                f"client_order_id {order.client_order_id!r} is already used"
            ) from exc

    async def order_for_update(self, order_id: UUID) -> Order | None:
        row = await self.conn.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE", order_id
        )
        return None if row is None else to_order(row)

    async def save_order(self, order: Order, expected_version: int) -> None:
        status = await self.conn.execute(
            f"UPDATE orders SET {_ORDER_UPDATE} WHERE id = $1 AND version = {_VERSION_PARAM}",
            *order_values(order),
            expected_version,
        )
        if status != "UPDATE 1":
            raise ConcurrentUpdate(f"order {order.id} changed concurrently")

    async def add_execution(self, execution: Execution) -> None:
        try:
            await self.conn.execute(
                "INSERT INTO executions (id, order_id, account_id, symbol, side, qty, price, at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                execution.id,
                execution.order_id,
                execution.account_id,
                execution.symbol,
                execution.side.value,
                execution.qty,
                execution.price,
                execution.at,
            )
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrentUpdate(f"execution {execution.id} is already recorded") from exc

    async def append_event(self, event: OrderEvent) -> None:
        await self.conn.execute(
            "INSERT INTO order_events (id, order_id, type, at, body) VALUES ($1, $2, $3, $4, $5)",
            event.id,
            event.order_id,
            event.type.value,
            event.at,
            event_encoder.encode(event).decode(),
        )

    async def enqueue(self, topic: str, body: bytes) -> None:
        await self.conn.execute("INSERT INTO outbox (topic, body) VALUES ($1, $2)", topic, body)

    # --- batches ---------------------------------------------------------------------------------

    async def orders_for_update(self, ids: Sequence[UUID]) -> dict[UUID, Order]:
        # Sorted, so that two workers locking overlapping batches cannot deadlock.
        rows = await self.conn.fetch(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
            sorted(set(ids)),
        )
        return {row["id"]: to_order(row) for row in rows}

    async def accounts_for_update(self, ids: Sequence[UUID]) -> dict[UUID, Account]:
        rows = await self.conn.fetch(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1::uuid[])"
            " ORDER BY id FOR UPDATE",
            sorted(set(ids)),
        )
        return {row["id"]: Account(**dict(row)) for row in rows}

    async def accounts(self, ids: Sequence[UUID]) -> dict[UUID, Account]:
        rows = await self.conn.fetch(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1::uuid[])", list(set(ids))
        )
        return {row["id"]: Account(**dict(row)) for row in rows}

    async def positions_for_update(
        self, keys: Sequence[tuple[UUID, str]]
    ) -> dict[tuple[UUID, str], Position]:
        wanted = sorted(set(keys))
        # A position that does not exist yet has no row to lock, so two workers filling the
        # first buys of one account and symbol would both start from nothing and the second
        # write would overwrite the first. A transaction advisory lock per (account, symbol),
        # taken in a fixed order, serialises them whether the row exists or not.
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT"
            " hashtextextended(a::text || ':' || s, 0) AS k"
            " FROM unnest($1::uuid[], $2::text[]) AS t(a, s) ORDER BY k) AS keys",
            [k[0] for k in wanted],
            [k[1] for k in wanted],
        )
        rows = await self.conn.fetch(
            f"SELECT {POSITION_COLUMNS} FROM positions"
            " WHERE (account_id, symbol) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
            " ORDER BY account_id, symbol FOR UPDATE",
            [k[0] for k in wanted],
            [k[1] for k in wanted],
        )
        return {(row["account_id"], row["symbol"]): to_position(row) for row in rows}

    async def write(self, changes: Changes) -> list[OutboxRow]:
        orders = list(changes.orders.values())
        rows = [order_values(order) for order, _ in orders]
        columns = [[row[i] for row in rows] for i in range(len(ORDER_FIELDS))]
        args: list[Any] = [*columns, [version for _, version in orders]]
        xs, es, cash = changes.executions, changes.events, sorted(changes.cash.items())
        positions = list(changes.positions.values())
        args += [
            [x.id for x in xs], [x.order_id for x in xs], [x.account_id for x in xs],
            [x.symbol for x in xs], [x.side.value for x in xs], [x.qty for x in xs],
            [x.price for x in xs], [x.at for x in xs],
            [e.id for e in es], [e.order_id for e in es], [e.type.value for e in es],
            [e.at for e in es], [event_encoder.encode(e).decode() for e in es],
            [a for a, _ in cash], [d[0] for _, d in cash], [d[1] for _, d in cash],
            *([getattr(p, c) for p in positions] for c in _POSITION_COLUMN_LIST),
            [t for t, _ in changes.outbox], [b for _, b in changes.outbox],
        ]  # fmt: skip
        try:
            row = await self.conn.fetchrow(_WRITE_BATCH, *args)
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrentUpdate(f"a fill is already recorded: {exc}") from exc
        assert row is not None
        if row["updated"] != len(orders):
            raise ConcurrentUpdate(f"{len(orders) - row['updated']} order(s) changed concurrently")
        ids = row["ids"] or []
        return [OutboxRow(i, t, b) for i, (t, b) in zip(ids, changes.outbox, strict=True)]


_POSITION_COLUMN_LIST = [c.strip() for c in POSITION_COLUMNS.split(",")]
_POSITION_TYPES = ["uuid", "uuid", "text", "numeric", "numeric", "numeric", "numeric"]


def _params(start: int, types: Sequence[str]) -> str:
    return ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start))


def _write_batch_sql() -> str:
    """One statement for a whole batch: every table's rows travel as typed arrays (unnest), so
    the cost is one round trip whatever the batch size. Events and outbox rows are inserted in
    the order given (their serial ids order them)."""
    n = len(ORDER_FIELDS)
    updates = ", ".join(f"{c} = v.{c}" for c in ORDER_FIELDS if c != "id")
    order_params = _params(1, [*ORDER_TYPES.values(), "integer"])
    i = n + 2
    x = _params(i, ["uuid", "uuid", "uuid", "text", "text", "numeric", "numeric", "timestamptz"])
    e = _params(i + 8, ["uuid", "uuid", "text", "timestamptz", "jsonb"])
    a = _params(i + 13, ["uuid", "numeric", "numeric"])
    p = _params(i + 16, _POSITION_TYPES)
    b = _params(i + 23, ["text", "bytea"])
    return (
        f"WITH o AS (UPDATE orders SET {updates} FROM unnest({order_params})"
        f" AS v({ORDER_COLUMNS}, expected) WHERE orders.id = v.id"
        " AND orders.version = v.expected RETURNING orders.id),"
        " x AS (INSERT INTO executions (id, order_id, account_id, symbol, side, qty, price, at)"
        f" SELECT * FROM unnest({x})),"
        " e AS (INSERT INTO order_events (id, order_id, type, at, body)"
        f" SELECT i, o, t, a, b FROM unnest({e}) WITH ORDINALITY AS r(i, o, t, a, b, n)"
        " ORDER BY n),"
        " a AS (UPDATE accounts"
        " SET cash = accounts.cash + v.dc, reserved_cash = accounts.reserved_cash + v.dr"
        f" FROM unnest({a}) AS v(id, dc, dr) WHERE accounts.id = v.id),"
        f" p AS (INSERT INTO positions ({POSITION_COLUMNS}) SELECT * FROM unnest({p})"
        " ON CONFLICT (account_id, symbol) DO UPDATE SET qty = EXCLUDED.qty,"
        " reserved_qty = EXCLUDED.reserved_qty, avg_entry_price = EXCLUDED.avg_entry_price,"
        " realized_pl = EXCLUDED.realized_pl, updated_at = now()),"
        " b AS (INSERT INTO outbox (topic, body, claimed_until)"
        f" SELECT t, body, now() + interval '{HANDOVER_LEASE_S} seconds'"
        f" FROM unnest({b}) WITH ORDINALITY AS r(t, body, n) ORDER BY n RETURNING id)"
        " SELECT (SELECT count(*) FROM o) AS updated,"
        " (SELECT array_agg(id ORDER BY id) FROM b) AS ids"
    )


_WRITE_BATCH = _write_batch_sql()
