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
from hub.domain.orders import Execution, Order, OrderEvent, Side
from hub.domain.positions import Position
from hub.services.trading_ports import Fill, FillQuery, Holdings, OrderQuery

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
# By the unique (account_id, client_order_id) index.
_BY_CLIENT_ID = (
    f"SELECT {ORDER_COLUMNS} FROM orders WHERE client_order_id = $2"
    " AND account_id = (SELECT id FROM accounts WHERE user_id = $1)"
)
# The cumulative quantity runs over all of an order's executions, before the page's filters.
_FILLS = (
    "SELECT * FROM (SELECT e.id, e.order_id, e.account_id, e.symbol, e.side, e.qty, e.price,"
    " e.at, o.qty AS order_qty,"
    " sum(e.qty) OVER (PARTITION BY e.order_id ORDER BY e.at, e.id) AS cum_qty"
    " FROM executions e JOIN orders o ON o.id = e.order_id WHERE o.user_id = $1) f"
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
        if query.symbols is not None:
            clauses.append(f"symbol = ANY({arg(sorted(query.symbols))}::text[])")
        if query.side is not None:
            clauses.append(f"side = {arg(query.side.value)}")
        if query.after is not None:
            clauses.append(f"created_at > {arg(query.after)}")
        if query.until is not None:
            clauses.append(f"created_at <= {arg(query.until)}")
        beyond, direction = (">", "ASC") if query.ascending else ("<", "DESC")
        if query.cursor is not None:
            at, oid = arg(query.cursor[0]), arg(query.cursor[1])
            clauses.append(f"(created_at, id) {beyond} ({at}, {oid})")
        rows = await self._pool.fetch(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE {' AND '.join(clauses)}"
            f" ORDER BY created_at {direction}, id {direction} LIMIT {arg(query.limit)}",
            *args,
        )
        return [to_order(row) for row in rows]

    async def order_by_client_id(self, user_id: UUID, client_order_id: str) -> Order | None:
        row = await self._pool.fetchrow(_BY_CLIENT_ID, user_id, client_order_id)
        return None if row is None else to_order(row)

    async def fills(self, query: FillQuery) -> list[Fill]:
        clauses, args = ["true"], [query.user_id]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.after is not None:
            clauses.append(f"at > {arg(query.after)}")
        if query.until is not None:
            clauses.append(f"at <= {arg(query.until)}")
        beyond, direction = (">", "ASC") if query.ascending else ("<", "DESC")
        if query.cursor is not None:
            at, eid = arg(query.cursor[0]), arg(query.cursor[1])
            clauses.append(f"(at, id) {beyond} ({at}, {eid})")
        rows = await self._pool.fetch(
            f"{_FILLS} WHERE {' AND '.join(clauses)}"
            f" ORDER BY at {direction}, id {direction} LIMIT {arg(query.limit)}",
            *args,
        )
        return [
            Fill(
                Execution(
                    id=row["id"],
                    order_id=row["order_id"],
                    account_id=row["account_id"],
                    symbol=row["symbol"],
                    side=Side(row["side"]),
                    qty=row["qty"],
                    price=row["price"],
                    at=row["at"],
                ),
                order_qty=row["order_qty"],
                cum_qty=row["cum_qty"],
            )
            for row in rows
        ]

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
