"""The trading core in PostgreSQL: a unit of work over one connection and transaction (row locks
with SELECT ... FOR UPDATE, compare-and-set on the order version), with batch forms that lock
many rows per statement and write a whole batch in one statement, and the read side."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from hub.domain.accounts import Account
from hub.domain.errors import DuplicateClientOrderId
from hub.domain.orders import Execution, Order, OrderEvent
from hub.domain.positions import Position
from hub.services.errors import ConcurrentUpdate
from hub.services.trading_ports import (
    HANDOVER_LEASE_S,
    Changes,
    Holdings,
    OrderQuery,
    OutboxRow,
)

ORDER_FIELDS = Order.__struct_fields__
_ORDER_COLUMNS = ", ".join(ORDER_FIELDS)
_ORDER_PARAMS = ", ".join(f"${i}" for i in range(1, len(ORDER_FIELDS) + 1))
_ORDER_UPDATE = ", ".join(
    f"{name} = ${i}" for i, name in enumerate(ORDER_FIELDS, 1) if name not in ("id",)
)
_VERSION_PARAM = f"${len(ORDER_FIELDS) + 1}"
_POSITION_COLUMNS = "account_id, user_id, symbol, qty, reserved_qty, avg_entry_price, realized_pl"
_ACCOUNT_COLUMNS = "id, user_id, cash, reserved_cash, currency, created_at"
# SQL types of the order columns: batch statements pass each column as one typed array.
ORDER_TYPES = {
    "id": "uuid", "account_id": "uuid", "user_id": "uuid", "client_order_id": "text",
    "symbol": "text", "side": "text", "type": "text", "time_in_force": "text", "qty": "numeric",
    "limit_price": "numeric", "stop_price": "numeric", "status": "text",
    "filled_qty": "numeric", "filled_avg_price": "numeric", "reserved_cash": "numeric",
    "reserved_qty": "numeric", "reject_reason": "text", "created_at": "timestamptz",
    "updated_at": "timestamptz", "submitted_at": "timestamptz", "filled_at": "timestamptz",
    "canceled_at": "timestamptz", "expired_at": "timestamptz", "triggered": "boolean",
    "version": "integer",
}  # fmt: skip
assert tuple(ORDER_TYPES) == ORDER_FIELDS, "orders columns and the Order struct diverged"
_event_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(OrderEvent)
# The portfolio routes need the account and its open positions on every request: one row, the
# positions as an array of records in it, so one round trip where a query each took two.
_HOLDINGS = (
    f"SELECT {_ACCOUNT_COLUMNS}, ARRAY(SELECT ROW(p.symbol, p.qty, p.reserved_qty,"
    " p.avg_entry_price, p.realized_pl) FROM positions p"
    " WHERE p.account_id = a.id AND p.qty > 0 ORDER BY p.symbol) AS positions"
    " FROM accounts a WHERE a.user_id = $1"
)
# The ownership check is the WHERE clause: no row when the order is missing or someone else's.
_OWNED_EVENTS = (
    "SELECT ARRAY(SELECT e.body FROM order_events e WHERE e.order_id = o.id ORDER BY e.seq)"
    " FROM orders o WHERE o.id = $1 AND o.user_id = $2"
)


def order_values(order: Order) -> list[Any]:
    return [
        v.value if hasattr(v, "value") and not isinstance(v, bool) else v
        for v in (getattr(order, name) for name in ORDER_FIELDS)
    ]


def to_order(row: asyncpg.Record) -> Order:
    return msgspec.convert(dict(row), Order)


def to_position(row: asyncpg.Record) -> Position:
    return Position(**{k: row[k] for k in Position.__struct_fields__})


def to_account(row: asyncpg.Record) -> Account:
    """The account columns of a row that may carry others (a joined read)."""
    return Account(**{k: row[k] for k in Account.__struct_fields__})


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
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE user_id = $1 FOR UPDATE", user_id
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
            f"SELECT {_POSITION_COLUMNS} FROM positions"
            " WHERE account_id = $1 AND symbol = $2 FOR UPDATE",
            account_id,
            symbol,
        )
        return None if row is None else to_position(row)

    async def save_position(self, position: Position) -> None:
        await self.conn.execute(
            f"INSERT INTO positions ({_POSITION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
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
                f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ({_ORDER_PARAMS})",
                *order_values(order),
            )
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateClientOrderId(
                f"client_order_id {order.client_order_id!r} is already used"
            ) from exc

    async def order_for_update(self, order_id: UUID) -> Order | None:
        row = await self.conn.fetchrow(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE", order_id
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
            _event_encoder.encode(event).decode(),
        )

    async def enqueue(self, topic: str, body: bytes) -> None:
        await self.conn.execute("INSERT INTO outbox (topic, body) VALUES ($1, $2)", topic, body)

    # --- batches ---------------------------------------------------------------------------------

    async def orders_for_update(self, ids: Sequence[UUID]) -> dict[UUID, Order]:
        # Sorted, so that two workers locking overlapping batches cannot deadlock.
        rows = await self.conn.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ANY($1::uuid[])"
            " ORDER BY id FOR UPDATE",
            sorted(set(ids)),
        )
        return {row["id"]: to_order(row) for row in rows}

    async def accounts_for_update(self, ids: Sequence[UUID]) -> dict[UUID, Account]:
        rows = await self.conn.fetch(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1::uuid[])"
            " ORDER BY id FOR UPDATE",
            sorted(set(ids)),
        )
        return {row["id"]: Account(**dict(row)) for row in rows}

    async def accounts(self, ids: Sequence[UUID]) -> dict[UUID, Account]:
        rows = await self.conn.fetch(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1::uuid[])", list(set(ids))
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
            f"SELECT {_POSITION_COLUMNS} FROM positions"
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
            [e.at for e in es], [_event_encoder.encode(e).decode() for e in es],
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


class PostgresTradingReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def order(self, order_id: UUID) -> Order | None:
        row = await self._pool.fetchrow(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1", order_id
        )
        return None if row is None else to_order(row)

    async def orders(self, query: OrderQuery) -> list[Order]:
        clauses, args = ["user_id = $1"], [query.user_id]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.statuses is not None:
            clauses.append(f"status = ANY({arg([s.value for s in query.statuses])}::text[])")
        if query.symbol is not None:
            clauses.append(f"symbol = {arg(query.symbol)}")
        if query.after is not None:
            clauses.append(f"created_at > {arg(query.after)}")
        if query.until is not None:
            clauses.append(f"created_at <= {arg(query.until)}")
        if query.cursor is not None:
            clauses.append(f"(created_at, id) < ({arg(query.cursor[0])}, {arg(query.cursor[1])})")
        rows = await self._pool.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE {' AND '.join(clauses)}"
            f" ORDER BY created_at DESC, id DESC LIMIT {arg(query.limit)}",
            *args,
        )
        return [to_order(row) for row in rows]

    async def positions(self, account_id: UUID) -> list[Position]:
        rows = await self._pool.fetch(
            f"SELECT {_POSITION_COLUMNS} FROM positions WHERE account_id = $1 ORDER BY symbol",
            account_id,
        )
        return [to_position(row) for row in rows]

    async def holdings(self, user_id: UUID) -> Holdings | None:
        row = await self._pool.fetchrow(_HOLDINGS, user_id)
        if row is None:
            return None
        account = to_account(row)
        positions = tuple(
            Position(
                account_id=account.id,
                user_id=account.user_id,
                symbol=symbol,
                qty=qty,
                reserved_qty=reserved_qty,
                avg_entry_price=avg_entry_price,
                realized_pl=realized_pl,
            )
            for symbol, qty, reserved_qty, avg_entry_price, realized_pl in row["positions"]
        )
        return Holdings(account, positions)

    async def working_orders(self) -> list[Order]:
        rows = await self._pool.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status IN"
            " ('pending_new', 'new', 'partially_filled', 'pending_cancel')"
        )
        return [to_order(row) for row in rows]

    async def orders_changed(self, since: datetime) -> list[Order]:
        rows = await self._pool.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE updated_at >= $1", since
        )
        return [to_order(row) for row in rows]

    async def events(self, order_id: UUID) -> list[OrderEvent]:
        rows = await self._pool.fetch(
            "SELECT body FROM order_events WHERE order_id = $1 ORDER BY seq", order_id
        )
        return [_event_decoder.decode(row["body"]) for row in rows]

    async def owned_events(self, user_id: UUID, order_id: UUID) -> list[OrderEvent] | None:
        bodies: list[str] | None = await self._pool.fetchval(_OWNED_EVENTS, order_id, user_id)
        return None if bodies is None else [_event_decoder.decode(body) for body in bodies]


_POSITION_COLUMN_LIST = [c.strip() for c in _POSITION_COLUMNS.split(",")]
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
        f" AS v({_ORDER_COLUMNS}, expected) WHERE orders.id = v.id"
        " AND orders.version = v.expected RETURNING orders.id),"
        " x AS (INSERT INTO executions (id, order_id, account_id, symbol, side, qty, price, at)"
        f" SELECT * FROM unnest({x})),"
        " e AS (INSERT INTO order_events (id, order_id, type, at, body)"
        f" SELECT i, o, t, a, b FROM unnest({e}) WITH ORDINALITY AS r(i, o, t, a, b, n)"
        " ORDER BY n),"
        " a AS (UPDATE accounts"
        " SET cash = accounts.cash + v.dc, reserved_cash = accounts.reserved_cash + v.dr"
        f" FROM unnest({a}) AS v(id, dc, dr) WHERE accounts.id = v.id),"
        f" p AS (INSERT INTO positions ({_POSITION_COLUMNS}) SELECT * FROM unnest({p})"
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
