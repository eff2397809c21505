"""The read side of trading in PostgreSQL: orders, positions, holdings and order events, each
read in one round trip, without locks."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from hub.adapters.postgres.rows import (
    ACCOUNT_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    event_decoder,
    to_account,
    to_order,
    to_position,
)
from hub.domain.orders import Order, OrderEvent
from hub.domain.positions import Position
from hub.services.trading_ports import Holdings, OrderQuery

# The portfolio routes need the account and its open positions on every request: one row, the
# positions as an array of records in it, so one round trip where a query each took two.
_HOLDINGS = (
    f"SELECT {ACCOUNT_COLUMNS}, ARRAY(SELECT ROW(p.symbol, p.qty, p.reserved_qty,"
    " p.avg_entry_price, p.realized_pl) FROM positions p"
    " WHERE p.account_id = a.id AND p.qty > 0 ORDER BY p.symbol) AS positions"
    " FROM accounts a WHERE a.user_id = $1"
)
# The ownership check is the WHERE clause: no row when the order is missing or someone else's.
_OWNED_EVENTS = (
    "SELECT ARRAY(SELECT e.body FROM order_events e WHERE e.order_id = o.id ORDER BY e.seq)"
    " FROM orders o WHERE o.id = $1 AND o.user_id = $2"
)


class PostgresTradingReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def order(self, order_id: UUID) -> Order | None:
        row = await self._pool.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1", order_id
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
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE {' AND '.join(clauses)}"
            f" ORDER BY created_at DESC, id DESC LIMIT {arg(query.limit)}",
            *args,
        )
        return [to_order(row) for row in rows]

    async def positions(self, account_id: UUID) -> list[Position]:
        rows = await self._pool.fetch(
            f"SELECT {POSITION_COLUMNS} FROM positions WHERE account_id = $1 ORDER BY symbol",
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
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE status IN"
            " ('pending_new', 'new', 'partially_filled', 'pending_cancel')"
        )
        return [to_order(row) for row in rows]

    async def orders_changed(self, since: datetime) -> list[Order]:
        rows = await self._pool.fetch(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE updated_at >= $1", since
        )
        return [to_order(row) for row in rows]

    async def events(self, order_id: UUID) -> list[OrderEvent]:
        rows = await self._pool.fetch(
            "SELECT body FROM order_events WHERE order_id = $1 ORDER BY seq", order_id
        )
        return [event_decoder.decode(row["body"]) for row in rows]

    async def owned_events(self, user_id: UUID, order_id: UUID) -> list[OrderEvent] | None:
        bodies: list[str] | None = await self._pool.fetchval(_OWNED_EVENTS, order_id, user_id)
        return None if bodies is None else [event_decoder.decode(body) for body in bodies]
