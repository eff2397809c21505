"""Two worker processes filling buys of one account in a symbol it does not hold yet: each
worker's `positions_for_update` finds no row to lock, so nothing makes the second wait for the
first, and both write the position as an absolute value (INSERT ... ON CONFLICT DO UPDATE SET
qty = EXCLUDED.qty). The shares must still add up to the executions, as cash does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from uuid import UUID

import asyncpg
import pytest

from hub.adapters.clock import SystemClock
from hub.adapters.postgres.trading import PostgresUnitOfWork
from hub.domain.calendar import AlwaysOpen
from hub.domain.orders import OrderStatus
from hub.domain.positions import Position
from hub.services.execution import OrderProcessor
from tests.order_world import D, World, work

pytestmark = pytest.mark.integration


class Meeting:
    """Holds each transaction right after it read (and locked) its positions until the other
    one has read its own too, for at most `patience` seconds: the two workers' decisions then
    overlap whenever the database lets them, and are serialised when it does not."""

    def __init__(self, patience: float = 1.0) -> None:
        self.arrived, self.everyone, self.patience = 0, asyncio.Event(), patience

    def unit_of_work(self, pool: asyncpg.Pool) -> PostgresUnitOfWork:
        meeting = self

        class Held(PostgresUnitOfWork):
            async def positions_for_update(
                self, keys: Sequence[tuple[UUID, str]]
            ) -> dict[tuple[UUID, str], Position]:
                found = await super().positions_for_update(keys)
                meeting.arrived += 1
                if meeting.arrived >= 2:
                    meeting.everyone.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(meeting.patience):
                        await meeting.everyone.wait()
                return found

        return Held(pool)


def held_worker(world: World, meeting: Meeting) -> OrderProcessor:
    processor = OrderProcessor(
        unit_of_work=lambda: meeting.unit_of_work(world.pool),
        market_data=world.market_data(),
        calendar=AlwaysOpen(),
        clock=SystemClock(),
        on_commit=world.handed.extend,
    )
    world.workers.append(processor)
    return processor


async def race_two_buys(world: World, *, holding: bool) -> None:
    await world.quote("99.98", "100.02")
    account = await world.trader()
    if holding:  # the position row exists already, so there is a row to lock
        opening = await world.submit(account, qty="1")
        await world.worker().handle(work(opening))
    a, b = await world.submit(account, qty="2"), await world.submit(account, qty="3")
    meeting = Meeting()
    one, two = held_worker(world, meeting), held_worker(world, meeting)
    await asyncio.gather(one.handle(work(a)), two.handle(work(b)))
    for order_id in (a, b):
        assert (await world.order(order_id)).status is OrderStatus.FILLED
        assert await world.fills(order_id) == 1
    bought = D(5 + holding)
    assert await world.cash(account) == account.cash - bought * D("100.02")
    assert [p.qty for p in await world.positions(account)] == [bought]  # not 2 or 3: both fills
    await world.assert_reconciled(account)


async def test_two_workers_adding_to_an_existing_position_keep_every_share(world: World) -> None:
    await race_two_buys(world, holding=True)


async def test_two_workers_opening_the_same_position_keep_every_share(world: World) -> None:
    await race_two_buys(world, holding=False)
