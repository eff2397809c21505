"""The order path wired as hub/bootstrap.py wires it, on PostgreSQL, with quotes the test
controls and no background tasks: tests call the services and the worker themselves. Used by
tests/integration/test_order_failure_branches.py."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from hub.adapters.clock import SystemClock
from hub.adapters.memory.market import MemoryQuotes
from hub.adapters.postgres.desk import PostgresOrderDesk
from hub.adapters.postgres.instruments import PostgresInstruments
from hub.adapters.postgres.outbox import PostgresOutbox
from hub.adapters.postgres.reader import PostgresTradingReader
from hub.adapters.postgres.trading import PostgresUnitOfWork
from hub.adapters.postgres.users import PostgresRegistrar
from hub.domain.accounts import Account
from hub.domain.calendar import AlwaysOpen
from hub.domain.orders import Order, OrderType, Side, SubmitOrder
from hub.domain.positions import Position
from hub.domain.quotes import Quote
from hub.services import messages
from hub.services.execution import OrderProcessor
from hub.services.market_data import MarketDataService
from hub.services.messages import Action, OrderMessage
from hub.services.orders import OrderService
from hub.services.trading_ports import OutboxRow
from tests.contracts import make_account, make_user

D = Decimal


def work(order_id: uuid.UUID, action: Action = Action.PROCESS) -> bytes:
    return messages.encode(OrderMessage(order_id, action, "AAPL"))


@dataclass
class World:
    pool: asyncpg.Pool
    quotes: MemoryQuotes = field(default_factory=MemoryQuotes)
    handed: list[OutboxRow] = field(default_factory=list)  # what on_commit gave the relay
    workers: list[OrderProcessor] = field(default_factory=list)

    def market_data(self, quotes: MemoryQuotes | None = None) -> MarketDataService:
        return MarketDataService(PostgresInstruments(self.pool), None, quotes or self.quotes)

    @property
    def service(self) -> OrderService:
        return OrderService(
            unit_of_work=lambda: PostgresUnitOfWork(self.pool),
            desk=PostgresOrderDesk(self.pool),
            reader=PostgresTradingReader(self.pool),
            market_data=self.market_data(),
            calendar=AlwaysOpen(),
            clock=SystemClock(),
            on_commit=self.handed.extend,
        )

    def worker(self, quotes: MemoryQuotes | None = None) -> OrderProcessor:
        """One worker process's OrderProcessor (closed by `aclose`)."""
        processor = OrderProcessor(
            unit_of_work=lambda: PostgresUnitOfWork(self.pool),
            market_data=self.market_data(quotes),
            calendar=AlwaysOpen(),
            clock=SystemClock(),
            on_commit=self.handed.extend,
        )
        self.workers.append(processor)
        return processor

    async def aclose(self) -> None:
        for worker in self.workers:
            await worker.aclose()

    async def quote(self, bid: str, ask: str, symbol: str = "AAPL") -> None:
        b, a = D(bid), D(ask)
        await self.quotes.put(
            Quote(symbol=symbol, bid=b, ask=a, last=(b + a) / 2, bid_size=D(100), ask_size=D(100),
                  open=b, high=a, low=b, prev_close=b, timestamp=datetime.now(UTC))
        )  # fmt: skip

    async def trader(self, cash: str = "100000.00") -> Account:
        user = make_user()
        account = make_account(user, cash)
        await PostgresRegistrar(self.pool).add_user_with_account(user, account)
        return account

    async def submit(self, account: Account, qty: str = "1", **kw: Any) -> uuid.UUID:
        """A buy (market unless `type=` says otherwise) through OrderService.submit."""
        kw.setdefault("type", OrderType.MARKET)
        command = SubmitOrder(symbol="AAPL", side=Side.BUY, qty=D(qty), **kw)
        submitted = await self.service.submit(account.user_id, command)
        return submitted.order.id

    async def order(self, order_id: uuid.UUID) -> Order:
        order = await PostgresTradingReader(self.pool).order(order_id)
        assert order is not None
        return order

    async def events(self, order_id: uuid.UUID) -> list[str]:
        return [e.type.value for e in await PostgresTradingReader(self.pool).events(order_id)]

    async def positions(self, account: Account) -> list[Position]:
        return await PostgresTradingReader(self.pool).positions(account.id)

    async def fills(self, order_id: uuid.UUID) -> int:
        sql = "SELECT count(*) FROM executions WHERE order_id = $1"
        n: int = await self.pool.fetchval(sql, order_id)
        return n

    async def cash(self, account: Account) -> Decimal:
        cash: Decimal = await self.pool.fetchval(
            "SELECT cash FROM accounts WHERE id = $1", account.id
        )
        return cash

    async def assert_reconciled(self, account: Account, reserved: str = "0") -> None:
        """Cash and shares are exactly what the executions say; only `reserved` is held."""
        fills = await self.pool.fetch(
            "SELECT side, qty, price FROM executions WHERE account_id = $1", account.id
        )
        row = await self.pool.fetchrow(
            "SELECT cash, reserved_cash FROM accounts WHERE id = $1", account.id
        )
        held = await self.pool.fetchval(
            "SELECT coalesce(sum(qty), 0) FROM positions WHERE account_id = $1", account.id
        )
        signed = [(1 if f["side"] == "buy" else -1, f["qty"], f["price"]) for f in fills]
        assert row["cash"] == account.cash - sum(s * q * p for s, q, p in signed)
        assert held == sum(s * q for s, q, _ in signed)
        assert row["reserved_cash"] == D(reserved)


class CrashBeforeSettle:
    """The PostgreSQL outbox, except that the relay process "dies" at its first settle: it has
    published the rows and never gets to delete them."""

    def __init__(self, inner: PostgresOutbox) -> None:
        self.inner, self.crashed = inner, False

    async def settle(self, sent: Sequence[int], failed: Sequence[int]) -> None:
        if not self.crashed:
            self.crashed = True
            raise ConnectionError("relay killed between publish and settle")
        await self.inner.settle(sent, failed)

    async def drain(
        self, limit: int, publish: Callable[[list[OutboxRow]], Awaitable[list[int]]]
    ) -> int:
        return await self.inner.drain(limit, publish)

    async def pending(self) -> int:
        return await self.inner.pending()


class Stream:
    """Stands in for the fan-out engine (not under test): records what the relay publishes."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []

    async def publish(self, channel: str, type_: str, data: Any) -> None:
        self.items.append((channel, type_, data))

    async def publish_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        self.items.extend(items)
