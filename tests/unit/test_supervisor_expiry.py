"""Day orders expire at the close through the supervisor's sweep and the worker, on the memory
stores with exchange hours and a clock the test moves; and the memory work queue's retry ladder
ends in its dead-letter list."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from hub.adapters.memory.market import MemoryInstruments, MemoryQuotes
from hub.adapters.memory.queue import MemoryWorkQueue
from hub.adapters.memory.trading import MemoryTrading, MemoryTradingReader
from hub.adapters.memory.users import MemoryAccounts, MemoryRegistrar, MemoryUsers
from hub.adapters.seed import seed_instruments
from hub.domain.accounts import Account
from hub.domain.calendar import ExchangeHours
from hub.domain.orders import OrderStatus, OrderType, Side, SubmitOrder, TimeInForce
from hub.domain.quotes import Quote
from hub.services import messages
from hub.services.execution import OrderProcessor
from hub.services.market_data import MarketDataService
from hub.services.messages import Action, OrderMessage
from hub.services.orders import OrderService
from hub.services.supervisor import OrderSupervisor
from hub.services.trading_ports import OutboxRow
from tests.aio import running, until
from tests.contracts import make_account, make_user

D = Decimal
# Wednesday 25 November 2026: the session is 09:30-16:00 New York time, 14:30-21:00 UTC.
AFTERNOON = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
CLOSE = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class Desk:
    """The order path wired as hub/bootstrap.py does in embedded mode, minus background tasks."""

    trading: MemoryTrading
    account: Account
    clock: FakeClock = field(default_factory=lambda: FakeClock(AFTERNOON))
    queue: MemoryWorkQueue = field(default_factory=lambda: MemoryWorkQueue((0.01,), 4))
    handed: list[OutboxRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        instruments = MemoryInstruments(s.instrument for s in seed_instruments())
        self.quotes = MemoryQuotes()
        market_data = MarketDataService(instruments, None, self.quotes)
        self.reader = MemoryTradingReader(self.trading)
        common: dict[str, Any] = {
            "market_data": market_data,
            "calendar": ExchangeHours(),
            "clock": self.clock,
        }
        self.service = OrderService(
            unit_of_work=self.trading.unit_of_work,
            desk=self.trading,
            reader=self.reader,
            on_commit=self.handed.extend,
            **common,
        )
        self.processor = OrderProcessor(
            unit_of_work=self.trading.unit_of_work, on_commit=self.handed.extend, **common
        )
        self.supervisor = OrderSupervisor(reader=self.reader, queue=self.queue, **common)

    async def resting_buy(self, tif: TimeInForce) -> uuid.UUID:
        """A limit buy of 10 at 95.00 below the market, accepted and resting."""
        await self.quotes.put(
            Quote(symbol="AAPL", bid=D("99.98"), ask=D("100.02"), last=D(100), bid_size=D(1),
                  ask_size=D(1), open=D(100), high=D(100), low=D(100), prev_close=D(100),
                  timestamp=self.clock.at)
        )  # fmt: skip
        command = SubmitOrder(
            symbol="AAPL",
            side=Side.BUY,
            type=OrderType.LIMIT,
            qty=D(10),
            limit_price=D("95.00"),
            time_in_force=tif,
        )
        submitted = await self.service.submit(self.account.user_id, command)
        order_id = submitted.order.id
        await self.processor.handle(messages.encode(OrderMessage(order_id, Action.PROCESS)))
        assert (await self.status(order_id)) is OrderStatus.NEW
        return order_id

    async def status(self, order_id: uuid.UUID) -> OrderStatus:
        order = await self.reader.order(order_id)
        assert order is not None
        return order.status

    async def reserved_cash(self) -> Decimal:
        account = await self.trading.accounts.get(self.account.id)
        assert account is not None
        return account.reserved_cash


@pytest.fixture
async def desk() -> AsyncIterator[Desk]:
    users, accounts = MemoryUsers(), MemoryAccounts()
    user = make_user()
    account = make_account(user)
    await MemoryRegistrar(users, accounts).add_user_with_account(user, account)
    desk = Desk(MemoryTrading(accounts), account)
    try:
        yield desk
    finally:
        await desk.processor.aclose()


async def test_a_day_order_expires_at_the_close_and_releases_its_reservation(desk: Desk) -> None:
    day = await desk.resting_buy(TimeInForce.DAY)
    gtc = await desk.resting_buy(TimeInForce.GTC)
    assert await desk.reserved_cash() == D(1900)
    desk.clock.at = CLOSE - timedelta(seconds=1)
    await desk.supervisor.sweep()
    assert await desk.queue.depth() == 0 and desk.supervisor.expired == 0
    desk.clock.at = CLOSE
    await desk.supervisor.sweep()
    assert await desk.queue.depth() == 1 and desk.supervisor.expired == 1
    seen: list[OrderMessage] = []

    async def worker(body: bytes) -> None:
        seen.append(messages.order_messages.decode(body))
        await desk.processor.handle(body)

    async with running(desk.queue.consume(worker)):
        await until(lambda: desk.processor.processed == 3)
    assert seen == [OrderMessage(day, Action.EXPIRE, "AAPL")]
    expired = await desk.reader.order(day)
    assert expired is not None and expired.status is OrderStatus.EXPIRED
    assert expired.expired_at == CLOSE and expired.reserved_cash == 0
    assert [e.type.value for e in await desk.reader.events(day)] == ["new", "accepted", "expired"]
    assert await desk.status(gtc) is OrderStatus.NEW  # good till canceled: it stays
    assert await desk.reserved_cash() == D(950)  # only the GTC order's 10 x 95.00
    account = await desk.trading.accounts.get(desk.account.id)
    assert account is not None and account.cash == desk.account.cash
    desk.clock.at = CLOSE + timedelta(hours=1)
    await desk.supervisor.sweep()  # nothing left to expire
    assert await desk.queue.depth() == 0 and desk.supervisor.expired == 1
    assert desk.queue.dead == [] and desk.queue.retried == 0


async def test_an_expire_message_before_the_close_changes_nothing(desk: Desk) -> None:
    day = await desk.resting_buy(TimeInForce.DAY)
    before = await desk.reader.order(day)
    await desk.processor.handle(messages.encode(OrderMessage(day, Action.EXPIRE, "AAPL")))
    assert await desk.reader.order(day) == before
    assert await desk.reserved_cash() == D(950)


async def test_a_day_order_whose_work_arrives_after_the_close_expires_instead_of_filling(
    desk: Desk,
) -> None:
    """A DAY market buy accepted just before the close whose PROCESS message is handled after it
    (a slow queue, or the supervisor's re-drive of a lost message) must not fill."""
    quote = Quote(symbol="AAPL", bid=D("99.98"), ask=D("100.02"), last=D(100), bid_size=D(1),
                  ask_size=D(1), open=D(100), high=D(100), low=D(100), prev_close=D(100),
                  timestamp=CLOSE - timedelta(seconds=5))  # fmt: skip
    await desk.quotes.put(quote)
    desk.clock.at = CLOSE - timedelta(seconds=5)
    command = SubmitOrder(symbol="AAPL", side=Side.BUY, type=OrderType.MARKET, qty=D(10))
    submitted = await desk.service.submit(desk.account.user_id, command)
    order_id = submitted.order.id
    assert await desk.reserved_cash() > 0
    desk.clock.at = CLOSE + timedelta(seconds=20)
    await desk.processor.handle(messages.encode(OrderMessage(order_id, Action.PROCESS, "AAPL")))
    order = await desk.reader.order(order_id)
    assert order is not None and order.status is OrderStatus.EXPIRED
    assert order.filled_qty == 0 and order.reserved_cash == 0
    assert await desk.reserved_cash() == 0
    account = await desk.trading.accounts.get(desk.account.id)
    assert account is not None and account.cash == desk.account.cash


async def test_the_memory_queue_dead_letters_a_message_that_always_fails() -> None:
    queue = MemoryWorkQueue(retry_delays=(0.01, 0.02), concurrency=2)
    attempts: list[bytes] = []

    async def handler(body: bytes) -> None:
        attempts.append(body)
        if body == b"poison" or attempts.count(body) == 1:
            raise RuntimeError("failed")

    async with running(queue.consume(handler)):
        await queue.publish(b"poison")
        await queue.publish(b"flaky")  # fails once, then goes through
        await until(lambda: queue.dead != [] and attempts.count(b"flaky") == 2)
        await asyncio.sleep(0.05)  # longer than the ladder: nothing comes back from `dead`
    assert queue.dead == [b"poison"]
    assert attempts.count(b"poison") == 3  # the first try and one per rung
    assert queue.retried == 3  # poison twice, flaky once
    assert await queue.depth() == 0
