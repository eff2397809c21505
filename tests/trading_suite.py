"""Contract of the trading stores (unit of work, reader, outbox), for the memory twin and
PostgreSQL alike. A subclass provides `stores` (a Stores) and the user/account already exist."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from msgspec.structs import replace

from hub.domain.accounts import Account
from hub.domain.errors import DuplicateClientOrderId
from hub.domain.orders import (
    Order,
    OrderStatus,
    OrderType,
    Reservation,
    Side,
    SubmitOrder,
    TimeInForce,
    accept,
    fill,
    new_order,
)
from hub.domain.orders import cancel as cancel_order
from hub.domain.positions import empty_position
from hub.services.errors import ConcurrentUpdate, IdempotencyConflict
from hub.services.trading_ports import (
    Changes,
    Holdings,
    IdempotencyRecord,
    OrderDesk,
    OrderQuery,
    Outbox,
    OutboxRow,
    Placement,
    TradingReader,
    UnitOfWork,
)
from tests.market_suite import AAPL

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


@dataclass
class Stores:
    uow: Callable[[], UnitOfWork]
    reader: TradingReader
    outbox: Outbox
    account: Account
    desk: OrderDesk


def make_order(
    account: Account,
    *,
    at: datetime = T0,
    cid: str | None = None,
    side: Side = Side.BUY,
    qty: str = "10",
) -> Order:
    command = SubmitOrder(
        symbol="AAPL",
        side=side,
        type=OrderType.LIMIT,
        qty=Decimal(qty),
        time_in_force=TimeInForce.GTC,
        limit_price=Decimal("100.00"),
        client_order_id=cid,
    )
    reservation = (
        Reservation(cash=Decimal(qty) * 100) if side is Side.BUY else Reservation(qty=Decimal(qty))
    )
    order, _ = new_order(
        command,
        instrument=AAPL,
        reservation=reservation,
        account_id=account.id,
        user_id=account.user_id,
        at=at,
    )
    return order


class TradingStoreContract:
    async def test_nothing_is_written_without_commit(self, stores: Stores) -> None:
        order = make_order(stores.account)
        async with stores.uow() as uow:
            await uow.add_order(order)
            await uow.save_account(replace(stores.account, reserved_cash=Decimal(1000)))
            await uow.enqueue("orders", b"x")
        assert await stores.reader.order(order.id) is None
        assert await stores.outbox.pending() == 0
        async with stores.uow() as uow:
            account = await uow.account_for_update(stores.account.user_id)
        assert account is not None
        assert account.reserved_cash == 0

    async def test_commit_writes_everything(self, stores: Stores) -> None:
        order, event = new_order(
            SubmitOrder(symbol="AAPL", side=Side.BUY, type=OrderType.MARKET, qty=Decimal(2)),
            instrument=AAPL,
            reservation=Reservation(cash=Decimal("400.00")),
            account_id=stores.account.id,
            user_id=stores.account.user_id,
            at=T0,
        )
        position = replace(
            empty_position(stores.account.id, stores.account.user_id, "AAPL"),
            qty=Decimal(5),
            avg_entry_price=Decimal("90.5"),
        )
        async with stores.uow() as uow:
            await uow.add_order(order)
            await uow.append_event(event)
            await uow.save_position(position)
            await uow.save_account(replace(stores.account, reserved_cash=Decimal("400.00")))
            await uow.enqueue("orders", b"work")
            await uow.commit()
        assert await stores.reader.order(order.id) == order
        assert [e.type for e in await stores.reader.events(order.id)] == [event.type]
        assert await stores.reader.positions(stores.account.id) == [position]
        assert await stores.outbox.pending() == 1
        async with stores.uow() as uow:
            locked = await uow.position_for_update(stores.account.id, "AAPL")
            account = await uow.account_for_update(stores.account.user_id)
        assert locked == position
        assert account is not None
        assert account.reserved_cash == Decimal("400.00")

    async def test_holdings_are_the_account_and_its_open_positions(self, stores: Stores) -> None:
        user_id = stores.account.user_id
        assert await stores.reader.holdings(uuid.uuid4()) is None
        assert await stores.reader.holdings(user_id) == Holdings(stores.account, ())
        empty = empty_position(stores.account.id, user_id, "AAPL")
        voo = replace(
            empty,
            symbol="VOO",
            qty=Decimal("3.0"),
            reserved_qty=Decimal(1),
            avg_entry_price=Decimal("400.5"),
            realized_pl=Decimal("-2.25"),
        )
        btc = replace(
            empty, symbol="BTC-USD", qty=Decimal("0.01000000"), avg_entry_price=Decimal("65000.12")
        )
        flat = replace(empty, symbol="MSFT", realized_pl=Decimal("12.5"))  # sold down to zero
        account = replace(stores.account, reserved_cash=Decimal("1000.5"))
        async with stores.uow() as uow:
            for position in (voo, flat, btc):
                await uow.save_position(position)
            await uow.save_account(account)
            await uow.commit()
        holdings = await stores.reader.holdings(user_id)
        assert holdings == Holdings(account, (btc, voo))  # by symbol, the flat one left out
        # Amounts come back as stored, scale included: the API shows qty unrounded.
        assert str(holdings.account.reserved_cash) == "1000.5"
        assert [str(p.qty) for p in holdings.positions] == ["0.01000000", "3.0"]

    async def test_owned_events_only_for_the_owner(self, stores: Stores) -> None:
        order, placed = new_order(
            SubmitOrder(symbol="AAPL", side=Side.BUY, type=OrderType.MARKET, qty=Decimal(2)),
            instrument=AAPL,
            reservation=Reservation(cash=Decimal("400.00")),
            account_id=stores.account.id,
            user_id=stores.account.user_id,
            at=T0,
        )
        accepted, accepted_event = accept(order, T0)  # one transaction: both events share `at`
        silent = make_order(stores.account)
        async with stores.uow() as uow:
            await uow.add_order(accepted)
            await uow.append_event(placed)
            await uow.append_event(accepted_event)
            await uow.add_order(silent)
            await uow.commit()
        owned = await stores.reader.owned_events(stores.account.user_id, order.id)
        assert owned is not None
        assert [e.id for e in owned] == [placed.id, accepted_event.id]  # in the order appended
        assert owned == await stores.reader.events(order.id)
        assert await stores.reader.owned_events(stores.account.user_id, silent.id) == []
        assert await stores.reader.owned_events(uuid.uuid4(), order.id) is None  # not yours
        assert await stores.reader.owned_events(stores.account.user_id, uuid.uuid4()) is None

    async def test_save_order_is_compare_and_set(self, stores: Stores) -> None:
        order = make_order(stores.account)
        async with stores.uow() as uow:
            await uow.add_order(order)
            await uow.commit()
        accepted, _ = accept(order, T0)
        filled, event = fill(
            accepted, exec_id=uuid.uuid4(), qty=Decimal(10), price=Decimal("99.00"), at=T0
        )
        async with stores.uow() as uow:
            await uow.save_order(filled, order.version)  # two transitions, one write
            assert event.execution is not None
            await uow.add_execution(event.execution)
            await uow.commit()
        stored = await stores.reader.order(order.id)
        assert stored is not None
        assert stored.status is OrderStatus.FILLED
        assert stored.filled_qty == Decimal(10)
        async with stores.uow() as uow:
            with pytest.raises(ConcurrentUpdate):
                await uow.save_order(accepted, order.version)  # stale: someone moved it on
        async with stores.uow() as uow:
            with pytest.raises(ConcurrentUpdate):
                await uow.add_execution(event.execution)  # the same fill twice

    async def test_client_order_id_unique_per_account(self, stores: Stores) -> None:
        async with stores.uow() as uow:
            await uow.add_order(make_order(stores.account, cid="mine-1"))
            await uow.commit()
        async with stores.uow() as uow:
            with pytest.raises(DuplicateClientOrderId):
                await uow.add_order(make_order(stores.account, cid="mine-1"))

    async def test_outbox_marks_only_what_was_published(self, stores: Stores) -> None:
        async with stores.uow() as uow:
            for body in (b"a", b"b", b"c"):
                await uow.enqueue("orders", body)
            await uow.commit()

        async def half(rows: list[OutboxRow]) -> list[int]:
            assert [r.body for r in rows] == [b"a", b"b", b"c"]
            return [rows[0].id, rows[2].id]

        assert await stores.outbox.drain(10, half) == 2
        assert await stores.outbox.pending() == 1
        seen: list[bytes] = []

        async def everything(rows: list[OutboxRow]) -> list[int]:
            seen.extend(r.body for r in rows)
            return [r.id for r in rows]

        assert await stores.outbox.drain(10, everything) == 1
        assert seen == [b"b"]
        assert await stores.outbox.drain(10, everything) == 0

    async def test_queries_filter_and_page(self, stores: Stores) -> None:
        orders = [make_order(stores.account, at=T0 + timedelta(seconds=i)) for i in range(5)]
        async with stores.uow() as uow:
            for order in orders:
                await uow.add_order(order)
            await uow.commit()
        base = OrderQuery(
            user_id=stores.account.user_id,
            statuses=None,
            symbol=None,
            after=None,
            until=None,
            limit=2,
            cursor=None,
        )
        first = await stores.reader.orders(base)
        assert [o.id for o in first] == [orders[4].id, orders[3].id]
        second = await stores.reader.orders(
            replace_query(base, cursor=(first[-1].created_at, first[-1].id))
        )
        assert [o.id for o in second] == [orders[2].id, orders[1].id]
        closed = await stores.reader.orders(
            replace_query(base, statuses=frozenset({OrderStatus.FILLED}))
        )
        assert closed == []
        window = await stores.reader.orders(
            replace_query(base, limit=10, after=T0, until=T0 + timedelta(seconds=2))
        )
        assert [o.id for o in window] == [orders[2].id, orders[1].id]
        other = await stores.reader.orders(replace_query(base, user_id=uuid.uuid4()))
        assert other == []
        assert {o.id for o in await stores.reader.working_orders()} >= {o.id for o in orders}
        changed = await stores.reader.orders_changed(T0 + timedelta(seconds=3))
        assert {o.id for o in changed} == {orders[3].id, orders[4].id}


def replace_query(query: OrderQuery, **changes: object) -> OrderQuery:
    from dataclasses import replace as dc_replace

    return dc_replace(query, **changes)  # type: ignore[arg-type]


def placement(order: Order, key: str | None = None) -> Placement:
    _, event = new_order(
        SubmitOrder(symbol=order.symbol, side=order.side, type=OrderType.MARKET, qty=order.qty),
        instrument=AAPL,
        reservation=Reservation(cash=order.reserved_cash, qty=order.reserved_qty),
        account_id=order.account_id,
        user_id=order.user_id,
        at=T0,
        order_id=order.id,
    )
    return Placement(order, event, (("orders", b"work"), ("stream", b"view")), key, "print")


async def publish_all(rows: list[OutboxRow]) -> list[int]:
    return [r.id for r in rows]


class OrderDeskContract:
    """The submit side: a snapshot without locks, then one conditional, atomic placement."""

    async def test_place_takes_the_reservation_and_writes_everything(self, stores: Stores) -> None:
        order = make_order(stores.account, qty="10")  # reserves 1,000.00 of the 100,000.00
        rows = await stores.desk.place(placement(order, key="k1"))
        assert rows is not None
        assert [(r.topic, r.body) for r in rows] == [("orders", b"work"), ("stream", b"view")]
        snap = await stores.desk.snapshot(stores.account.user_id, "AAPL", "k1")
        assert snap.account is not None
        assert snap.account.reserved_cash == order.reserved_cash == Decimal(1000)
        assert snap.stored == IdempotencyRecord("print", order)
        assert await stores.reader.order(order.id) == order
        assert [e.order_id for e in await stores.reader.events(order.id)] == [order.id]
        assert await stores.outbox.pending() == 2
        # Leased to the writer's relay: another relay's poll leaves them alone...
        assert await stores.outbox.drain(10, publish_all) == 0
        # ...until it settles them: published ones go, failed ones are free for anyone.
        await stores.outbox.settle([rows[0].id], [rows[1].id])
        assert await stores.outbox.pending() == 1
        seen: list[bytes] = []

        async def keep(claimed: list[OutboxRow]) -> list[int]:
            seen.extend(r.body for r in claimed)
            return [r.id for r in claimed]

        assert await stores.outbox.drain(10, keep) == 1
        assert seen == [b"view"]

    async def test_place_refuses_beyond_buying_power_and_writes_nothing(
        self, stores: Stores
    ) -> None:
        # The account has 100,000.00: a snapshot said yes, but the row says no.
        big = make_order(stores.account, qty="1001")  # 100,100.00
        assert not await stores.desk.place(placement(big, key="k2"))
        snap = await stores.desk.snapshot(stores.account.user_id, "AAPL", "k2")
        assert snap.account is not None and snap.account.reserved_cash == 0
        assert snap.stored is None
        assert await stores.reader.order(big.id) is None
        assert await stores.outbox.pending() == 0

    async def test_concurrent_placements_never_overdraw(self, stores: Stores) -> None:
        orders = [make_order(stores.account, qty="300") for _ in range(5)]  # 30,000.00 each
        results = await asyncio.gather(*(stores.desk.place(placement(o)) for o in orders))
        assert sorted(r is not None for r in results) == [False, False, True, True, True]
        snap = await stores.desk.snapshot(stores.account.user_id, "AAPL", None)
        assert snap.account is not None and snap.account.reserved_cash == Decimal(90_000)

    async def test_a_sell_reserves_shares_it_has(self, stores: Stores) -> None:
        position = replace(
            empty_position(stores.account.id, stores.account.user_id, "AAPL"), qty=Decimal(5)
        )
        no_shares = make_order(stores.account, side=Side.SELL, qty="1")
        assert not await stores.desk.place(placement(no_shares))  # no position yet
        async with stores.uow() as uow:
            await uow.save_position(position)
            await uow.commit()
        assert not await stores.desk.place(
            placement(make_order(stores.account, side=Side.SELL, qty="6"))
        )
        assert await stores.desk.place(
            placement(make_order(stores.account, side=Side.SELL, qty="5"))
        )
        snap = await stores.desk.snapshot(stores.account.user_id, "AAPL", None)
        assert snap.position is not None
        assert (snap.position.qty, snap.position.reserved_qty) == (Decimal(5), Decimal(5))

    async def test_the_idempotency_record_keeps_the_order_as_placed(self, stores: Stores) -> None:
        order = make_order(stores.account, qty="2")
        assert await stores.desk.place(placement(order, key="k3"))
        async with stores.uow() as uow:  # the worker moves the order on
            accepted, _ = accept(order, T0)
            await uow.save_order(accepted, order.version)
            await uow.commit()
        snap = await stores.desk.snapshot(stores.account.user_id, "AAPL", "k3")
        assert snap.stored == IdempotencyRecord("print", order)
        assert await stores.reader.order(order.id) == accepted
        other = await stores.desk.snapshot(uuid.uuid4(), "AAPL", "k3")  # keys are per user
        assert other.stored is None

    async def test_place_conflicts(self, stores: Stores) -> None:
        assert await stores.desk.place(placement(make_order(stores.account, cid="c1"), key="k"))
        with pytest.raises(IdempotencyConflict):
            await stores.desk.place(placement(make_order(stores.account), key="k"))
        with pytest.raises(DuplicateClientOrderId):
            await stores.desk.place(placement(make_order(stores.account, cid="c1")))
        snap = await stores.desk.snapshot(stores.account.user_id, "AAPL", None)
        assert snap.account is not None and snap.account.reserved_cash == Decimal(1000)

    async def test_snapshot_of_an_unknown_user(self, stores: Stores) -> None:
        snap = await stores.desk.snapshot(uuid.uuid4(), "AAPL", None)
        assert (snap.account, snap.position, snap.stored) == (None, None, None)


class BatchContract:
    """The worker's batch forms of the unit of work."""

    async def test_batch_locks_and_writes_in_one_go(self, stores: Stores) -> None:
        a, b = make_order(stores.account), make_order(stores.account)
        async with stores.uow() as uow:
            await uow.add_order(a)
            await uow.add_order(b)
            await uow.commit()
        filled, fill_event = fill(
            accept(a, T0)[0], exec_id=uuid.uuid4(), qty=Decimal(10), price=Decimal(99), at=T0
        )
        canceled, cancel_event = cancel_order(b, T0)
        position = replace(
            empty_position(stores.account.id, stores.account.user_id, "AAPL"),
            qty=Decimal(10),
            avg_entry_price=Decimal(99),
        )
        async with stores.uow() as uow:
            locked = await uow.orders_for_update([b.id, a.id, uuid.uuid4()])
            assert locked == {a.id: a, b.id: b}
            accounts = await uow.accounts_for_update([stores.account.id])
            assert accounts == {stores.account.id: stores.account}
            assert await uow.accounts([stores.account.id]) == accounts
            key = (stores.account.id, "AAPL")
            assert await uow.positions_for_update([key]) == {}
            account = replace(
                stores.account, cash=stores.account.cash - 990, reserved_cash=Decimal(5)
            )
            assert fill_event.execution is not None
            written = await uow.write(
                Changes(
                    orders={a.id: (filled, a.version), b.id: (canceled, b.version)},
                    cash={account.id: (Decimal(-990), Decimal(5))},
                    positions={key: position},
                    executions=[fill_event.execution],
                    events=[fill_event, cancel_event],
                    outbox=[("stream", b"1"), ("stream", b"2"), ("stream", b"3")],
                )
            )
            await uow.commit()
        assert await stores.reader.order(a.id) == filled
        assert await stores.reader.order(b.id) == canceled
        assert await stores.reader.positions(stores.account.id) == [position]
        snap = await stores.desk.snapshot(stores.account.user_id, "AAPL", None)
        assert snap.account == account
        assert [e.type for e in await stores.reader.events(a.id)] == [fill_event.type]
        assert [r.body for r in written] == [b"1", b"2", b"3"]
        assert sorted(r.id for r in written) == [r.id for r in written]  # ids keep the order
        assert await stores.outbox.pending() == 3
        assert await stores.outbox.drain(10, publish_all) == 0  # leased to the writer
        await stores.outbox.settle([r.id for r in written], [])
        assert await stores.outbox.pending() == 0

    async def test_batch_write_is_compare_and_set(self, stores: Stores) -> None:
        order = make_order(stores.account)
        async with stores.uow() as uow:
            await uow.add_order(order)
            await uow.commit()
        accepted, _ = accept(order, T0)
        async with stores.uow() as uow:
            with pytest.raises(ConcurrentUpdate):
                await uow.write(Changes(orders={order.id: (accepted, order.version + 1)}))
        assert await stores.reader.order(order.id) == order
