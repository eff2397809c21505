"""The trading core in PostgreSQL: a unit of work over one connection and transaction (row locks
with SELECT ... FOR UPDATE, compare-and-set on the order version), the read side, and the outbox
drained with FOR UPDATE SKIP LOCKED so that several relays can run side by side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from hub.domain.accounts import Account
from hub.domain.orders import Execution, Order, OrderEvent
from hub.domain.positions import Position
from hub.services.trading_ports import (
    ConcurrentUpdate,
    DuplicateClientOrderId,
    IdempotencyConflict,
    OrderQuery,
    OutboxRow,
    StoredResponse,
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
_event_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(OrderEvent)


def order_values(order: Order) -> list[Any]:
    return [
        v.value if hasattr(v, "value") and not isinstance(v, bool) else v
        for v in (getattr(order, name) for name in ORDER_FIELDS)
    ]


def to_order(row: asyncpg.Record) -> Order:
    return msgspec.convert(dict(row), Order)


def to_position(row: asyncpg.Record) -> Position:
    return Position(**{k: row[k] for k in Position.__struct_fields__})


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

    async def stored_response(self, user_id: UUID, key: str) -> StoredResponse | None:
        row = await self.conn.fetchrow(
            "SELECT fingerprint, status, body FROM idempotency_keys"
            " WHERE user_id = $1 AND key = $2",
            user_id,
            key,
        )
        return (
            None if row is None else StoredResponse(row["fingerprint"], row["status"], row["body"])
        )

    async def store_response(self, user_id: UUID, key: str, response: StoredResponse) -> None:
        # A concurrent twin inserting the same key waits on this row until we commit, then fails
        # with a unique violation and replays what we stored.
        try:
            async with self.conn.transaction():  # a savepoint: the conflict must not poison us
                await self.conn.execute(
                    "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body,"
                    " created_at) VALUES ($1, $2, $3, $4, $5, now())",
                    user_id,
                    key,
                    response.fingerprint,
                    response.status,
                    response.body,
                )
        except asyncpg.UniqueViolationError as exc:
            raise IdempotencyConflict("the Idempotency-Key was stored by another request") from exc


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


class PostgresOutbox:
    LEASE_S = 30

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
            self.LEASE_S,
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
            failed = [r.id for r in claimed if r.id not in set(sent)]
            if sent:
                await self._pool.execute(
                    "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", sent
                )
            if failed:  # back in line at once, rather than after the lease
                await self._pool.execute(
                    "UPDATE outbox SET claimed_until = NULL WHERE id = ANY($1::bigint[])", failed
                )
        return len(sent)

    async def pending(self) -> int:
        count: int = await self._pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        return count

    async def purge_sent(self, older_than_s: float) -> int:
        status: str = await self._pool.execute(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)", older_than_s
        )
        return int(status.split()[-1])
