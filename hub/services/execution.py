"""The order worker's logic: messages are group-committed. Whatever work has arrived while the
previous batch was being written forms the next batch: one transaction locks its orders, their
accounts and their positions (three statements, whatever the batch size), moves each order
through the simulated venue in message order, and writes the new states, executions, audit
events, cash and share movements and outgoing publications in ONE statement.

A message whose decision fails is failed alone (its queue retries it); a batch whose
transaction fails is retried one message per transaction, so one bad order cannot hold back
the others. It is idempotent: a redelivered message finds the order already moved on and changes
nothing (transitions are compare-and-set on the order version, and an execution id is derived
from the order and its filled qty, so the same fill can never be stored twice).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from hub.domain.accounts import Account
from hub.domain.calendar import MarketCalendar, day_order_expired
from hub.domain.errors import Forbidden
from hub.domain.matching import match_quote
from hub.domain.orders import (
    MATCHABLE_STATUSES,
    Execution,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    TimeInForce,
    accept,
    cancel,
    effective_type,
    expire,
    reject,
)
from hub.domain.positions import Position, apply_order_event, empty_position
from hub.domain.quotes import Quote
from hub.services import messages
from hub.services.batching import GroupCommit
from hub.services.channels import orders_channel, portfolio_channel
from hub.services.market_data import MarketDataService
from hub.services.messages import Action, OrderMessage
from hub.services.ports import Clock
from hub.services.trading_ports import Changes, OutboxRow, UnitOfWorkFactory
from hub.services.views import LedgerUpdate, OrderUpdate

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
        on_commit: Callable[[Sequence[OutboxRow]], None],
        max_batch: int = 128,
    ) -> None:
        self._uow = unit_of_work
        self._market_data = market_data
        self._calendar = calendar
        self._clock = clock
        self._on_commit = on_commit
        self._group: GroupCommit[OrderMessage] = GroupCommit(self._run_batch, max_batch=max_batch)
        self.processed = 0

    @property
    def batches(self) -> int:
        return self._group.batches

    def stats(self) -> dict[str, int]:
        return {"processed": self.processed, "batches": self.batches}

    async def handle(self, body: bytes) -> None:
        """The work-queue handler. Raising makes the queue retry the message later: for a
        message carrying several orders, all of them (the ones already done are no-ops)."""
        work = messages.decode_work(body)
        if len(work) == 1:
            await self._group.submit(work[0])
            return
        outcomes = await asyncio.gather(
            *(self._group.submit(m) for m in work), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def aclose(self) -> None:
        await self._group.aclose()

    async def _run_batch(self, batch: list[OrderMessage]) -> list[BaseException | None]:
        # Quotes are read before the transaction opens: no row lock waits on a Redis round trip.
        quotes = await self._market_data.quotes({m.symbol for m in batch if m.symbol})
        try:
            return await self._transaction(batch, quotes)
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
            log.warning(
                "order batch failed; one message at a time", size=len(batch), error=repr(exc)
            )
        outcomes: list[BaseException | None] = []
        for message in batch:
            try:
                outcomes += await self._transaction([message], quotes)
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    async def _transaction(
        self, batch: list[OrderMessage], quotes: dict[str, Quote]
    ) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        changes = Changes()
        async with self._uow() as uow:
            orders = await uow.orders_for_update([m.order_id for m in batch])
            positions = await uow.positions_for_update(
                [(o.account_id, o.symbol) for o in orders.values()]
            )
            # A batch reads accounts without locking them and writes cash as deltas, so the
            # submits of these accounts never wait for it. Its buying-power check (a fill that
            # ran past its reservation) may then see a slightly old row; the table's CHECKs
            # catch that, the batch is retried one message at a time, and a single message
            # locks its account, so the decision is exact there.
            account_ids = [o.account_id for o in orders.values()]
            if len(batch) == 1:
                accounts = await uow.accounts_for_update(account_ids)
            else:
                accounts = await uow.accounts(account_ids)
            read = dict(accounts)
            unquoted = {o.symbol for o in orders.values()} - quotes.keys()
            if unquoted:  # a message without its symbol, or a symbol with no quote yet
                quotes = {**quotes, **await self._market_data.quotes(unquoted)}
            versions = {order_id: order.version for order_id, order in orders.items()}
            now = self._clock.now()
            for message in batch:
                order = orders.get(message.order_id)
                if order is None:
                    log.warning("message for an unknown order", order_id=str(message.order_id))
                    outcomes.append(None)
                    continue
                if order.is_terminal:
                    outcomes.append(None)  # a redelivery, or work another message finished
                    continue
                account = accounts.get(order.account_id)
                if account is None:
                    outcomes.append(LookupError(f"order {order.id} has no account"))
                    continue
                key = (order.account_id, order.symbol)
                position = positions.get(key) or empty_position(
                    order.account_id, order.user_id, order.symbol
                )
                try:
                    events = await self._decide(
                        order, message.action, quotes.get(order.symbol), account, position, now
                    )
                    moved = _apply(events, account, position)
                except Exception as exc:
                    outcomes.append(exc)
                    continue
                outcomes.append(None)
                if not events:
                    continue
                orders[order.id] = events[-1].order
                changes.orders[order.id] = (events[-1].order, versions[order.id])
                account, position = moved.account, moved.position
                accounts[account.id] = account
                if moved.account_changed:
                    first = read[account.id]
                    changes.cash[account.id] = (
                        account.cash - first.cash,
                        account.reserved_cash - first.reserved_cash,
                    )
                if moved.position_changed:
                    positions[key] = changes.positions[key] = position
                changes.executions += moved.executions
                changes.events += events
                changes.outbox += moved.outbox
            if not changes.orders:
                return outcomes
            rows = await uow.write(changes)
            await uow.commit()
        self.processed += len(changes.orders)
        self._on_commit(rows)
        return outcomes

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
        if action is Action.EXPIRE or order.time_in_force is TimeInForce.DAY:
            category = (await self._market_data.instrument(order.symbol)).category
            if day_order_expired(order, category, self._calendar, now):
                # Its session closed: whatever woke it (the EXPIRE sweep, a PROCESS message that
                # arrived late or was re-driven, a trigger), a day order never fills after it.
                return [expire(order, now)[1]]
            if action is Action.EXPIRE:
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


@dataclass(slots=True)
class _Applied:
    account: Account
    position: Position
    account_changed: bool
    position_changed: bool
    executions: list[Execution]
    outbox: list[tuple[str, bytes]]


def _apply(events: list[OrderEvent], account: Account, position: Position) -> _Applied:
    """What the events do to the ledger, and the publications that announce them; pure, so a
    failure leaves nothing half-applied in the batch."""
    before = (account, position)
    executions: list[Execution] = []
    outbox: list[tuple[str, bytes]] = []
    for event in events:
        account, position = apply_order_event(account, position, event)
        if event.execution is not None:
            executions.append(event.execution)
        channel = orders_channel(event.order.user_id)
        view = OrderUpdate.after(event, position.qty)
        outbox.append((messages.STREAM_TOPIC, messages.stream(channel, "order", view)))
    applied = _Applied(
        account, position, account != before[0], position != before[1], executions, outbox
    )
    if applied.account_changed or applied.position_changed:
        update = LedgerUpdate.of(account, position)
        channel = portfolio_channel(position.user_id)
        outbox.append((messages.STREAM_TOPIC, messages.stream(channel, "portfolio", update)))
    return applied
