"""The PostgreSQL trading stores pass the memory twin's contract, and lock like a database."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg
import msgspec
import pytest

from hub.adapters.postgres.desk import PostgresOrderDesk
from hub.adapters.postgres.outbox import PostgresOutbox
from hub.adapters.postgres.reader import PostgresTradingReader
from hub.adapters.postgres.trading import PostgresUnitOfWork
from hub.adapters.postgres.users import PostgresRegistrar
from hub.domain.orders import OrderType, Reservation, Side, SubmitOrder, accept, new_order
from hub.services.trading_ports import IdempotencyRecord, OutboxRow, Placement
from hub.services.views import OrderView
from tests.contracts import make_account, make_user
from tests.market_suite import AAPL
from tests.order_query_suite import OrderQueryContract
from tests.trading_suite import (
    T0,
    BatchContract,
    OrderDeskContract,
    Stores,
    TradingStoreContract,
    make_order,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def stores(pool: asyncpg.Pool) -> Stores:
    user = make_user()
    account = make_account(user)
    await PostgresRegistrar(pool).add_user_with_account(user, account)
    return Stores(
        lambda: PostgresUnitOfWork(pool),
        PostgresTradingReader(pool),
        PostgresOutbox(pool),
        account,
        PostgresOrderDesk(pool),
    )


class TestPostgresTrading(
    TradingStoreContract, OrderDeskContract, BatchContract, OrderQueryContract
):
    pass


async def blocked_on_a_row_lock(pool: asyncpg.Pool) -> bool:
    waiting = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database() AND query ILIKE '%for update%'"
    )
    return bool(waiting)


async def test_order_lock_serialises_two_units(stores: Stores, pool: asyncpg.Pool) -> None:
    order = make_order(stores.account)
    async with stores.uow() as uow:
        await uow.add_order(order)
        await uow.commit()
    inside = asyncio.Event()
    log: list[str] = []

    async def first() -> None:
        async with stores.uow() as uow:
            await uow.order_for_update(order.id)
            inside.set()
            # Hold the lock until PostgreSQL shows the second unit waiting for it.
            async with asyncio.timeout(10):
                while not await blocked_on_a_row_lock(pool):  # noqa: ASYNC110 - no event to await
                    await asyncio.sleep(0.01)
            log.append("first done")

    async def second() -> None:
        await inside.wait()
        async with stores.uow() as uow:
            await uow.order_for_update(order.id)
            log.append("second locked")

    await asyncio.gather(first(), second())
    assert log == ["first done", "second locked"]


async def test_two_relays_never_publish_the_same_row(stores: Stores) -> None:
    async with stores.uow() as uow:
        for i in range(50):
            await uow.enqueue("orders", str(i).encode())
        await uow.commit()
    published: list[bytes] = []

    async def slow(rows: list[OutboxRow]) -> list[int]:
        await asyncio.sleep(0.05)
        published.extend(r.body for r in rows)
        return [r.id for r in rows]

    async def relay() -> None:
        while await stores.outbox.drain(7, slow):
            pass

    await asyncio.gather(relay(), relay(), relay())
    assert sorted(published, key=int) == [str(i).encode() for i in range(50)]


async def test_a_key_stored_as_an_http_response_still_replays(
    stores: Stores, pool: asyncpg.Pool
) -> None:
    """Records written before the service stopped storing HTTP responses hold 202 and the
    answer's JSON: the order as placed is read from its first event."""
    command = SubmitOrder(symbol="AAPL", side=Side.BUY, type=OrderType.MARKET, qty=Decimal(2))
    order, event = new_order(
        command,
        instrument=AAPL,
        reservation=Reservation(cash=Decimal(210)),
        account_id=stores.account.id,
        user_id=stores.account.user_id,
        at=T0,
    )
    assert await stores.desk.place(Placement(order, event, (("orders", b"work"),)))
    async with stores.uow() as uow:  # the worker moves the order on
        await uow.save_order(accept(order, T0)[0], order.version)
        await uow.commit()
    await pool.execute(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at)"
        " VALUES ($1, 'old', 'print', 202, $2, now())",
        order.user_id,
        msgspec.json.encode(OrderView.of(order)),
    )
    snap = await stores.desk.snapshot(order.user_id, "AAPL", "old")
    assert snap.stored == IdempotencyRecord("print", order)
