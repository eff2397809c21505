"""Contract of the trading reader's finer queries (the Alpaca-compatible routes need them):
orders by side, by several symbols and oldest first; an order by its client_order_id; and the
executions as fills with their cumulative quantity. Runs with the trading suite's `stores`."""

from __future__ import annotations

import uuid
from dataclasses import replace as dc_replace
from datetime import timedelta
from decimal import Decimal

from msgspec.structs import replace

from hub.domain.orders import Side, accept, fill
from hub.services.trading_ports import FillQuery, OrderQuery
from tests.trading_suite import T0, Stores, make_order


class OrderQueryContract:
    async def test_side_symbols_and_oldest_first(self, stores: Stores) -> None:
        buys = [make_order(stores.account, at=T0 + timedelta(seconds=i)) for i in range(3)]
        sell = replace(
            make_order(stores.account, at=T0 + timedelta(seconds=3), side=Side.SELL),
            symbol="MSFT",
        )
        async with stores.uow() as uow:
            for order in [*buys, sell]:
                await uow.add_order(order)
            await uow.commit()
        base = OrderQuery(stores.account.user_id, None, None, None, None, 10, None)
        ids = [o.id for o in await stores.reader.orders(dc_replace(base, side=Side.BUY))]
        assert ids == [buys[2].id, buys[1].id, buys[0].id]
        only = dc_replace(base, symbols=frozenset({"MSFT", "VOO"}))
        assert [o.id for o in await stores.reader.orders(only)] == [sell.id]
        both = dc_replace(base, symbols=frozenset({"MSFT", "AAPL"}), side=Side.SELL)
        assert [o.id for o in await stores.reader.orders(both)] == [sell.id]
        oldest = dc_replace(base, ascending=True, limit=2)
        first = await stores.reader.orders(oldest)
        assert [o.id for o in first] == [buys[0].id, buys[1].id]
        rest = dc_replace(oldest, cursor=(first[-1].created_at, first[-1].id))
        assert [o.id for o in await stores.reader.orders(rest)] == [buys[2].id, sell.id]

    async def test_order_by_client_order_id_is_per_user(self, stores: Stores) -> None:
        order = make_order(stores.account, cid="strategy-7")
        async with stores.uow() as uow:
            await uow.add_order(order)
            await uow.commit()
        user_id = stores.account.user_id
        assert await stores.reader.order_by_client_id(user_id, "strategy-7") == order
        assert await stores.reader.order_by_client_id(user_id, "strategy-8") is None
        assert await stores.reader.order_by_client_id(uuid.uuid4(), "strategy-7") is None

    async def test_fills_carry_the_cumulative_quantity(self, stores: Stores) -> None:
        order = make_order(stores.account, qty="10")
        other = make_order(stores.account, qty="1")
        moved, _ = accept(order, T0)
        first, e1 = fill(moved, exec_id=uuid.uuid4(), qty=Decimal(4), price=Decimal(99), at=T0)
        later = T0 + timedelta(seconds=5)
        second, e2 = fill(first, exec_id=uuid.uuid4(), qty=Decimal(6), price=Decimal(98), at=later)
        alone, e3 = fill(
            accept(other, T0)[0],
            exec_id=uuid.uuid4(),
            qty=Decimal(1),
            price=Decimal("97.5"),
            at=T0 + timedelta(seconds=2),
        )
        async with stores.uow() as uow:
            await uow.add_order(second)
            await uow.add_order(alone)
            for event in (e1, e2, e3):
                assert event.execution is not None
                await uow.add_execution(event.execution)
            await uow.commit()
        query = FillQuery(stores.account.user_id, None, None, 10)
        fills = await stores.reader.fills(query)
        assert [(f.execution.qty, f.cum_qty, f.order_qty) for f in fills] == [
            (Decimal(6), Decimal(10), Decimal(10)),  # newest first
            (Decimal(1), Decimal(1), Decimal(1)),
            (Decimal(4), Decimal(4), Decimal(10)),
        ]
        assert fills[0].execution == e2.execution
        # Paged oldest first, the cumulative quantity still counts the earlier pages' fills.
        page = await stores.reader.fills(dc_replace(query, ascending=True, limit=2))
        assert [f.execution.id for f in page] == [e1.execution.id, e3.execution.id]  # type: ignore[union-attr]
        cursor = (page[-1].execution.at, page[-1].execution.id)
        rest = await stores.reader.fills(dc_replace(query, ascending=True, cursor=cursor))
        assert [(f.execution.qty, f.cum_qty) for f in rest] == [(Decimal(6), Decimal(10))]
        window = dc_replace(query, after=T0, until=T0 + timedelta(seconds=2))
        assert [f.execution.qty for f in await stores.reader.fills(window)] == [Decimal(1)]
        assert await stores.reader.fills(dc_replace(query, user_id=uuid.uuid4())) == []
