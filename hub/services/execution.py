"""The order worker's logic: take one message, lock the order, its account and its position,
move the order through the simulated venue, and write the new state, the executions, the audit
events, the cash and share movements and the outgoing publications in ONE transaction.

It is idempotent: a redelivered message finds the order already moved on and changes nothing
(transitions are compare-and-set on the order version, and an execution id is derived from the
order and its filled qty, so the same fill can never be stored twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import structlog

from hub.domain.accounts import Account
from hub.domain.calendar import MarketCalendar, day_order_expired
from hub.domain.errors import Forbidden
from hub.domain.matching import match_quote
from hub.domain.orders import (
    MATCHABLE_STATUSES,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    accept,
    cancel,
    effective_type,
    expire,
    reject,
)
from hub.domain.positions import Position, apply_order_event, empty_position
from hub.domain.quotes import Quote
from hub.services import messages
from hub.services.channels import orders_channel, portfolio_channel
from hub.services.market_data import MarketDataService
from hub.services.messages import Action
from hub.services.ports import Clock
from hub.services.trading_ports import UnitOfWork, UnitOfWorkFactory
from hub.services.views import LedgerUpdate, OrderView

log = structlog.get_logger("hub.worker")

EXECUTION_IDS = uuid.UUID("6f1d2c7e-4b8a-4f0e-9d3c-2a5b7e9f1c08")


def execution_id(order: Order) -> uuid.UUID:
    """Deterministic: the same order at the same filled qty always yields the same id."""
    return uuid.uuid5(EXECUTION_IDS, f"{order.id}:{order.filled_qty}")


class OrderProcessor:
    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        market_data: MarketDataService,
        calendar: MarketCalendar,
        clock: Clock,
        on_commit: Callable[[], None],
    ) -> None:
        self._uow = unit_of_work
        self._market_data = market_data
        self._calendar = calendar
        self._clock = clock
        self._on_commit = on_commit
        self.processed = 0

    async def handle(self, body: bytes) -> None:
        """The work-queue handler. Raising makes the queue retry the message later."""
        message = messages.order_messages.decode(body)
        # Read the quote before the transaction opens: no row lock waits on a Redis round trip.
        quote = await self._quote_for(message.symbol)
        async with self._uow() as uow:
            order = await uow.order_for_update(message.order_id)
            if order is None:
                log.warning("message for an unknown order", order_id=str(message.order_id))
                return
            if order.is_terminal:
                return  # a redelivery, or work that another message already finished
            account = await uow.account_for_update(order.user_id)
            if account is None:
                raise LookupError(f"order {order.id} has no account")
            position = await uow.position_for_update(account.id, order.symbol)
            position = position or empty_position(account.id, order.user_id, order.symbol)
            now = self._clock.now()
            if quote is None or quote.symbol != order.symbol:
                quote = (await self._market_data.quotes([order.symbol])).get(order.symbol)
            events = await self._decide(order, message.action, quote, account, position, now)
            if not events:
                return
            await self._write(uow, order, events, account, position)
            await uow.commit()
        self.processed += 1
        self._on_commit()

    async def _quote_for(self, symbol: str) -> Quote | None:
        if not symbol:
            return None
        return (await self._market_data.quotes([symbol])).get(symbol)

    async def _decide(
        self,
        order: Order,
        action: Action,
        quote: Quote | None,
        account: Account,
        position: Position,
        now: datetime,
    ) -> list[OrderEvent]:
        events: list[OrderEvent] = []
        if order.status is OrderStatus.PENDING_CANCEL:
            # Whatever the message, a pending cancel is honoured before anything can fill.
            return [cancel(order, now)[1]]
        if action is Action.EXPIRE:
            category = (await self._market_data.instrument(order.symbol)).category
            if day_order_expired(order, category, self._calendar, now):
                events.append(expire(order, now)[1])
            return events
        if order.status is OrderStatus.PENDING_NEW:
            if quote is None and effective_type(order) is OrderType.MARKET:
                return [reject(order, "no quote to execute against", now)[1]]
            order, accepted = accept(order, now)
            events.append(accepted)
        if order.status not in MATCHABLE_STATUSES or quote is None:
            return events
        _, fills = match_quote(order, quote, exec_id=execution_id(order), at=now)
        try:
            for event in fills:
                account, position = apply_order_event(account, position, event)
        except Forbidden:
            # The market ran past the cash a market buy reserved (slippage beyond the buffer):
            # cancel rather than let cash go below what other orders have reserved.
            log.warning("fill refused for lack of cash, canceling", order_id=str(order.id))
            return [*events, cancel(order, now)[1]]
        return [*events, *fills]

    async def _write(
        self,
        uow: UnitOfWork,
        original: Order,
        events: list[OrderEvent],
        account: Account,
        position: Position,
    ) -> None:
        account_before, position_before = account, position
        for event in events:
            account, position = apply_order_event(account, position, event)
            if event.execution is not None:
                await uow.add_execution(event.execution)
            await uow.append_event(event)
            await uow.enqueue(
                messages.STREAM_TOPIC,
                messages.stream(
                    orders_channel(original.user_id), "order", OrderView.of(event.order)
                ),
            )
        await uow.save_order(events[-1].order, original.version)
        if account != account_before:
            await uow.save_account(account)
        if position != position_before:
            await uow.save_position(position)
        if account != account_before or position != position_before:
            update = LedgerUpdate.of(account, position)
            channel = portfolio_channel(original.user_id)
            await uow.enqueue(messages.STREAM_TOPIC, messages.stream(channel, "portfolio", update))
