"""Submitting, canceling and reading orders (the API side of the order path).

Submit answers synchronously with every pre-trade check. It reads a snapshot of the account (no
lock), checks the order against it, then writes the order, its reservation, its audit event, the
idempotency record and two outbox rows (work for the workers, the event for the owner's socket)
in ONE atomic step whose reservation is conditional: if another order took the buying power in
between, nothing is written and the check runs again on a fresh snapshot. Once it is written,
the order cannot be lost: the relay delivers the outbox rows whenever the broker is reachable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec

from hub.domain.calendar import MarketCalendar
from hub.domain.errors import InvalidInput, InvalidOrder, NotFound, Overloaded
from hub.domain.instruments import Instrument
from hub.domain.orders import (
    Order,
    OrderEvent,
    OrderStatus,
    SubmitOrder,
    new_order,
    request_cancel,
)
from hub.domain.positions import empty_position
from hub.domain.quotes import Quote
from hub.domain.risk import DEFAULT_LIMITS, RiskLimits, check_order
from hub.services import messages
from hub.services.admission import Admission
from hub.services.channels import orders_channel
from hub.services.errors import IdempotencyConflict, IdempotencyKeyReused
from hub.services.market_data import MarketDataService
from hub.services.ports import Clock
from hub.services.trading_ports import (
    Fill,
    FillQuery,
    IdempotencyRecord,
    OrderDesk,
    OrderQuery,
    OutboxRow,
    Placement,
    SubmitSnapshot,
    TradingReader,
    UnitOfWorkFactory,
)
from hub.services.views import OrderUpdate

MAX_IDEMPOTENCY_KEY = 255
PLACE_ATTEMPTS = 3  # a reservation lost to a concurrent order is checked again this many times


@dataclass(frozen=True, slots=True)
class _Market:
    """What the pre-trade checks need to know about the market, read before the transaction."""

    instrument: Instrument
    quote: Quote | None
    market_open: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class Submitted:
    """What a submit answers: the order as placed and whether this is a replay. A replay (the
    Idempotency-Key was used before, with the same request) carries the order as the first
    request placed it, not as it is now, so that a retry gets the answer the first one got. The
    edges choose the status and the bytes."""

    order: Order
    replayed: bool


def fingerprint(command: SubmitOrder) -> str:
    """What makes two requests "the same": the decoded command, so key order and spacing of
    the JSON do not matter."""
    return hashlib.sha256(msgspec.json.encode(command)).hexdigest()


class OrderService:
    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        desk: OrderDesk,
        reader: TradingReader,
        market_data: MarketDataService,
        calendar: MarketCalendar,
        clock: Clock,
        on_commit: Callable[[Sequence[OutboxRow]], None],
        admission: Admission | None = None,
        limits: RiskLimits = DEFAULT_LIMITS,
    ) -> None:
        self._uow = unit_of_work
        self._desk = desk
        self._admission = admission
        self._reader = reader
        self._market_data = market_data
        self._calendar = calendar
        self._clock = clock
        # Hands the committed outbox rows to the relay: published now, not at its next poll.
        self._on_commit = on_commit
        self._limits = limits

    async def submit(
        self, user_id: UUID, command: SubmitOrder, idempotency_key: str | None = None
    ) -> Submitted:
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise InvalidInput(
                "Idempotency-Key must be 1 to 255 characters", field="Idempotency-Key"
            )
        if self._admission is None:
            return await self._submit(user_id, command, idempotency_key)
        with self._admission.admit(user_id):
            return await self._submit(user_id, command, idempotency_key)

    async def _submit(self, user_id: UUID, command: SubmitOrder, key: str | None) -> Submitted:
        symbol = command.symbol.strip().upper()
        command = msgspec.structs.replace(command, symbol=symbol)
        found = await self._market_data.instruments([symbol])
        if symbol not in found:
            raise InvalidOrder(f"unknown symbol {symbol}", field="symbol")
        instrument = found[symbol]
        now = self._clock.now()
        market = _Market(
            instrument=instrument,
            quote=(await self._market_data.quotes([symbol])).get(symbol),
            market_open=self._calendar.is_open(instrument.category, now),
            now=now,
        )
        print_ = fingerprint(command)
        try:
            for _ in range(PLACE_ATTEMPTS):
                snapshot = await self._desk.snapshot(user_id, symbol, key)
                if snapshot.stored is not None:
                    return _replayed(snapshot.stored, print_)
                placement = self._placement(user_id, command, key, print_, market, snapshot)
                rows = await self._desk.place(placement)
                if rows is not None:
                    self._on_commit(rows)
                    return Submitted(placement.order, replayed=False)
        except IdempotencyConflict:
            # A concurrent twin with the same key was stored first: answer what it answered.
            assert key is not None
            return await self._replay(user_id, symbol, key, print_)
        # Each time the check passed on the snapshot and the reservation failed on the row:
        # concurrent orders of this account keep taking the same buying power.
        raise Overloaded("this account's orders are racing for the same buying power; retry")

    def _placement(
        self,
        user_id: UUID,
        command: SubmitOrder,
        key: str | None,
        print_: str,
        market: _Market,
        snapshot: SubmitSnapshot,
    ) -> Placement:
        account = snapshot.account
        if account is None:
            raise NotFound("no account for this user")
        position = snapshot.position or empty_position(account.id, user_id, command.symbol)
        reservation = check_order(
            command,
            instrument=market.instrument,
            quote=market.quote,
            account=account,
            available_qty=position.qty_available,
            market_open=market.market_open,
            now=market.now,
            limits=self._limits,
        )
        order, event = new_order(
            command,
            instrument=market.instrument,
            reservation=reservation,
            account_id=account.id,
            user_id=user_id,
            at=market.now,
        )
        view = OrderUpdate.after(event)
        work = messages.OrderMessage(order.id, messages.Action.PROCESS, order.symbol)
        return Placement(
            order=order,
            event=event,
            outbox=(
                (messages.ORDERS_TOPIC, messages.encode(work)),
                (messages.STREAM_TOPIC, messages.stream(orders_channel(user_id), "order", view)),
            ),
            key=key,
            fingerprint=print_,
        )

    async def _replay(self, user_id: UUID, symbol: str, key: str, print_: str) -> Submitted:
        stored = (await self._desk.snapshot(user_id, symbol, key)).stored
        if stored is None:  # pragma: no cover - the conflict means it exists
            raise IdempotencyConflict("the Idempotency-Key is being used; retry")
        return _replayed(stored, print_)

    async def cancel(self, user_id: UUID, order_id: UUID) -> Order:
        """The order as the cancel request left it: pending_cancel (the worker cancels it)."""
        async with self._uow() as uow:
            order = await uow.order_for_update(order_id)
            if order is None or order.user_id != user_id:
                raise NotFound(f"no order {order_id}")
            if order.status is OrderStatus.PENDING_CANCEL:
                return order  # asking twice is not an error
            moved, event = request_cancel(order, self._clock.now())
            await uow.save_order(moved, order.version)
            await uow.append_event(event)
            await uow.enqueue(
                messages.ORDERS_TOPIC,
                messages.encode(
                    messages.OrderMessage(order.id, messages.Action.CANCEL, order.symbol)
                ),
            )
            await uow.enqueue(
                messages.STREAM_TOPIC,
                messages.stream(orders_channel(user_id), "order", OrderUpdate.after(event)),
            )
            await uow.commit()
        self._on_commit(())  # rows written without a lease: the relay polls for them now
        return moved

    async def get(self, user_id: UUID, order_id: UUID) -> Order:
        order = await self._reader.order(order_id)
        if order is None or order.user_id != user_id:
            raise NotFound(f"no order {order_id}")  # someone else's order does not exist for you
        return order

    async def by_client_order_id(self, user_id: UUID, client_order_id: str) -> Order:
        order = await self._reader.order_by_client_id(user_id, client_order_id)
        if order is None:
            raise NotFound(f"no order with client_order_id {client_order_id!r}")
        return order

    async def query(self, query: OrderQuery) -> list[Order]:
        return await self._reader.orders(query)

    async def fills(self, query: FillQuery) -> list[Fill]:
        """The user's executions (newest first unless the query says otherwise)."""
        return await self._reader.fills(query)

    async def events(self, user_id: UUID, order_id: UUID) -> list[OrderEvent]:
        """The order's audit trail, oldest first; NotFound as in `get`."""
        events = await self._reader.owned_events(user_id, order_id)
        if events is None:
            raise NotFound(f"no order {order_id}")
        return events


def _replayed(stored: IdempotencyRecord, print_: str) -> Submitted:
    if stored.fingerprint != print_:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request; use a new key"
        )
    return Submitted(stored.order, replayed=True)
