"""The order path's failure branches on PostgreSQL and RabbitMQ: poisoned work climbs the retry
ladder into the dead-letter queue; a relay killed between publish and settle delivers again and
the order still fills once; redelivered work changes nothing; a cancel racing the fill wins or
loses, never both; the worker's reject and cancel branches give back what the order reserved."""

from __future__ import annotations

import asyncio
import random
import uuid

import aio_pika
import pytest

from hub.adapters.memory.market import MemoryQuotes
from hub.adapters.postgres.outbox import PostgresOutbox
from hub.adapters.rabbitmq import DEAD, RETRIES_HEADER, RabbitWorkQueue
from hub.domain.errors import NotCancelable, PriceOutsideCollar
from hub.domain.orders import OrderStatus, OrderType, TimeInForce
from hub.services import messages
from hub.services.messages import Action
from hub.services.relay import OutboxRelay
from hub.services.trading_ports import OutboxRow
from tests.aio import running, until, until_async
from tests.order_world import CrashBeforeSettle, D, Stream, World, work

pytestmark = pytest.mark.integration


async def test_a_message_that_always_fails_is_dead_lettered_after_the_retry_ladder(
    amqp_url: str, amqp_prefix: str
) -> None:
    queue = RabbitWorkQueue(amqp_url, retry_delays=(0.2, 0.2), prefix=amqp_prefix)
    await queue.start()
    attempts: list[bytes] = []

    async def poisoned(body: bytes) -> None:
        attempts.append(body)
        raise RuntimeError("this message always fails")

    body = work(uuid.uuid4())
    try:
        async with running(queue.consume(poisoned)):
            await queue.publish(body)
            await until(lambda: queue.dead_lettered == 1)
            await asyncio.sleep(0.6)  # longer than both rungs: nothing comes back from `dead`
        assert (queue.retried, queue.dead_lettered) == (2, 1)
        assert attempts == [body] * 3  # the first delivery and one per rung
        assert await queue.depth() == 0
    finally:
        await queue.close()
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        dead = await channel.declare_queue(amqp_prefix + DEAD, passive=True)
        assert dead.declaration_result.message_count == 1
        parked = await dead.get(timeout=5)
        assert parked.body == body and parked.headers[RETRIES_HEADER] == 2
        await parked.ack()


async def test_a_relay_killed_before_settling_delivers_again_and_the_order_fills_once(
    world: World, amqp_url: str, amqp_prefix: str
) -> None:
    queue = RabbitWorkQueue(amqp_url, retry_delays=(0.2,), prefix=amqp_prefix)
    await queue.start()
    outbox = PostgresOutbox(world.pool)
    try:
        await world.quote("99.98", "100.02")
        account = await world.trader()
        order_id = await world.submit(account, qty="2")
        assert [r.topic for r in world.handed] == ["orders", "stream"]
        # Born leased to this process (for however long the adapter says): make it outlast
        # the test, so that only the explicit expiry below lets another relay in.
        await world.pool.execute("UPDATE outbox SET claimed_until = now() + interval '1 h'")
        first, second = Stream(), Stream()
        dying = OutboxRelay(CrashBeforeSettle(outbox), queue, first, poll_interval=0.05)
        dying.kick(list(world.handed))
        async with running(dying.run()):
            await until(lambda: dying.failures >= 1)
            await asyncio.sleep(0.3)  # it polls again meanwhile: its own lease keeps it off
        assert dying.sent == 2 and len(first.items) == 1
        assert await outbox.pending() == 2  # published, never settled
        assert await queue.depth() == 1
        other = OutboxRelay(outbox, queue, second, poll_interval=0.05)
        async with running(other.run()):
            # Asserting that nothing is sent: a bounded wait of 6 poll intervals (0.05 s).
            await asyncio.sleep(0.3)
            assert other.sent == 0  # the rows stay leased to the dead relay until it runs out
            await world.pool.execute("UPDATE outbox SET claimed_until = now() - interval '1 s'")
            other.kick()
            await until(lambda: other.sent == 2)
            # Counted when published; the rows are deleted just after (settling).
            await until_async(lambda: _settled(outbox))
        assert len(second.items) == 1
        assert await queue.depth() == 2  # the work message went out twice: at least once
        processor = world.worker()
        handled: list[bytes] = []

        async def handler(body: bytes) -> None:
            await processor.handle(body)
            handled.append(body)

        async with running(queue.consume(handler)):
            await until(lambda: len(handled) == 2)
        assert handled == [work(order_id)] * 2
        assert queue.retried == 0 and processor.processed == 1
        order = await world.order(order_id)
        assert order.status is OrderStatus.FILLED and order.version == 3
        assert await world.fills(order_id) == 1
        assert await world.events(order_id) == ["new", "accepted", "fill"]
        await world.assert_reconciled(account)
        assert await world.cash(account) == account.cash - D("200.04")
    finally:
        await queue.close()


async def test_redelivered_work_changes_nothing(world: World) -> None:
    await world.quote("99.98", "100.02")
    account = await world.trader()
    worker, twin = world.worker(), world.worker()  # two worker processes, one database
    market = await world.submit(account, qty="3")
    await worker.handle(work(market))
    filled = await world.order(market)
    await worker.handle(work(market))
    assert await world.order(market) == filled and filled.status is OrderStatus.FILLED
    # Redelivered while the first delivery is still in flight, in one worker and in two.
    raced = await world.submit(account, qty="4")
    body = work(raced)
    await asyncio.gather(worker.handle(body), twin.handle(body), worker.handle(body))
    resting = await world.submit(
        account,
        qty="5",
        type=OrderType.LIMIT,
        limit_price=D("95.00"),
        time_in_force=TimeInForce.GTC,
    )
    await worker.handle(work(resting))
    accepted = await world.order(resting)
    await asyncio.gather(worker.handle(work(resting)), twin.handle(work(resting)))
    assert await world.order(resting) == accepted and accepted.status is OrderStatus.NEW
    assert await world.events(resting) == ["new", "accepted"]
    for order_id in (market, raced):
        order = await world.order(order_id)
        assert (order.status, order.version) == (OrderStatus.FILLED, 3)
        assert await world.fills(order_id) == 1
        assert await world.events(order_id) == ["new", "accepted", "fill"]
    assert worker.processed + twin.processed == 3  # each order moved by one transaction
    await world.assert_reconciled(account, reserved="475.00")  # the resting limit's 5 x 95
    assert await world.cash(account) == account.cash - 7 * D("100.02")


async def test_cancel_racing_the_fill_ends_one_way_and_the_ledger_reconciles(world: World) -> None:
    await world.quote("99.98", "100.02")
    account = await world.trader()
    workers = [world.worker(), world.worker()]  # two worker processes
    # The position exists before the race (its first creation is another story: see
    # test_order_position_race.py), so this is about the order's own status only.
    first = await world.submit(account)
    await workers[0].handle(work(first))
    orders = [await world.submit(account) for _ in range(30)]
    service = world.service

    rng = random.Random(7)
    asked: dict[uuid.UUID, bool] = {}  # whether the cancel request was taken

    async def cancel(order_id: uuid.UUID) -> None:
        await asyncio.sleep(rng.uniform(0.015, 0.06))  # the worker's path is longer: even it out
        try:
            await service.cancel(account.user_id, order_id)
            asked[order_id] = True
        except NotCancelable:
            asked[order_id] = False

    async def fill(order_id: uuid.UUID) -> None:
        await asyncio.sleep(rng.uniform(0, 0.03))
        await workers[rng.randrange(2)].handle(work(order_id))

    await asyncio.gather(*(f(o) for o in orders for f in (cancel, fill)))
    # The cancels' own work messages (unleased outbox rows) arrive afterwards: nothing to do.
    cancels: list[bytes] = []

    async def collect(rows: list[OutboxRow]) -> list[int]:
        cancels.extend(r.body for r in rows if r.topic == messages.ORDERS_TOPIC)
        return [r.id for r in rows]

    while await PostgresOutbox(world.pool).drain(500, collect):
        pass
    assert sorted(cancels) == sorted(work(o, Action.CANCEL) for o in orders if asked[o])
    before = {o: await world.order(o) for o in orders}
    for body in cancels:
        await workers[0].handle(body)
    outcomes = {OrderStatus.FILLED: 0, OrderStatus.CANCELED: 0}
    for order_id in orders:
        order = await world.order(order_id)
        assert order == before[order_id]
        assert order.reserved_cash == 0
        outcomes[order.status] += 1
        if asked[order_id]:  # the cancel got in first: the work message then canceled it
            assert order.status is OrderStatus.CANCELED and await world.fills(order_id) == 0
            assert await world.events(order_id) == ["new", "pending_cancel", "canceled"]
        else:  # the fill got in first: the cancel was refused
            assert order.status is OrderStatus.FILLED and await world.fills(order_id) == 1
            assert await world.events(order_id) == ["new", "accepted", "fill"]
    assert all(outcomes.values()), f"no race went both ways: {outcomes}"
    await world.assert_reconciled(account)
    filled = outcomes[OrderStatus.FILLED] + 1
    assert await world.cash(account) == account.cash - filled * D("100.02")


async def test_a_market_order_the_worker_cannot_price_is_rejected_and_its_cash_released(
    world: World,
) -> None:
    await world.quote("99.98", "100.02")
    account = await world.trader()
    market = await world.submit(account, qty="5")
    limit = await world.submit(account, qty="5", type=OrderType.LIMIT, limit_price=D("95.00"))
    assert (await world.order(market)).reserved_cash == D("525.11")  # 5 x 100.02 x 1.05, ceiled
    blind = world.worker(quotes=MemoryQuotes())  # the quote store lost the symbol
    await blind.handle(work(market))
    await blind.handle(work(limit))
    rejected = await world.order(market)
    assert rejected.status is OrderStatus.REJECTED and rejected.reserved_cash == 0
    assert rejected.reject_reason == "no quote to execute against"
    assert await world.events(market) == ["new", "rejected"]
    assert (await world.order(limit)).status is OrderStatus.NEW  # a limit rests instead
    assert await world.fills(market) == await world.fills(limit) == 0
    await world.assert_reconciled(account, reserved="475.00")
    assert await world.cash(account) == account.cash


async def test_a_limit_outside_the_collar_is_refused_at_submit(world: World) -> None:
    await world.quote("99.98", "100.02")  # last 100.00: the collar is 90.00 .. 110.00
    account = await world.trader()
    for price in ("89.99", "110.01"):
        with pytest.raises(PriceOutsideCollar) as refused:
            await world.submit(account, type=OrderType.LIMIT, limit_price=D(price))
        assert refused.value.code == "price_outside_collar"
    assert world.handed == [] and await world.pool.fetchval("SELECT count(*) FROM orders") == 0
    inside = await world.submit(account, type=OrderType.LIMIT, limit_price=D("90.00"))
    assert (await world.order(inside)).status is OrderStatus.PENDING_NEW
    await world.assert_reconciled(account, reserved="90.00")


async def test_a_fill_beyond_buying_power_is_canceled_and_leaves_cash_intact(world: World) -> None:
    account = await world.trader(cash="1000.00")
    worker = world.worker()
    await world.quote("99.96", "100.00")
    runaway = await world.submit(account, qty="9")  # reserves 9 x 100.00 x 1.05 = 945.00
    await world.quote("119.96", "120.00")  # 9 x 120 = 1080: more than the account's cash
    await worker.handle(work(runaway))
    canceled = await world.order(runaway)
    assert canceled.status is OrderStatus.CANCELED and canceled.reserved_cash == 0
    assert await world.events(runaway) == ["new", "accepted", "canceled"]
    assert await world.fills(runaway) == 0
    assert await world.cash(account) == D("1000.00")
    await world.assert_reconciled(account)
    # Past the reservation but within buying power, the fill goes through.
    await world.quote("99.96", "100.00")
    slipped = await world.submit(account, qty="9")
    await world.quote("109.96", "110.00")
    await worker.handle(work(slipped))
    assert (await world.order(slipped)).status is OrderStatus.FILLED
    assert await world.cash(account) == D("10.00")
    await world.assert_reconciled(account)


async def _settled(outbox: PostgresOutbox) -> bool:
    return await outbox.pending() == 0
