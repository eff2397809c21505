"""The Order aggregate: the submit command, its validation, the status machine and the fill rules.

Every change is a pure function ``(order, ...) -> (new_order, event)``: the order is a frozen
Struct, its ``version`` grows by one per transition (repositories compare-and-set on it), and the
event carries a snapshot of the new order for the append-only audit trail. An order also holds what
it reserved at submission (cash for a buy, shares for a sell); every event says how much of that
reservation it released, so the ledger (``hub.domain.positions``) can apply it to the account and
the position without recomputing anything.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any
from uuid import UUID, uuid4

import msgspec
from msgspec.structs import replace

from hub.domain.errors import InvalidInput
from hub.domain.instruments import Instrument

ZERO = Decimal(0)
MAX_CLIENT_ORDER_ID_LENGTH = 128
# Amounts are stored as NUMERIC(28, 10). Derived amounts that can have more places (averages,
# realized P&L, proportional releases) are quantized to this here, so that the memory adapters
# and Postgres hold exactly the same values.
QUANTUM = Decimal("1e-10")


class InvalidOrder(InvalidInput):
    """The order's fields do not make a valid order."""

    code = "invalid_order"
    title = "Invalid order"


class InvalidQuantity(InvalidOrder):
    """The quantity is not positive or not a whole number of lots."""

    code = "invalid_quantity"
    title = "Invalid quantity"


class PriceNotOnTick(InvalidOrder):
    """A limit or stop price is not positive or not a multiple of the instrument's tick size."""

    code = "price_not_on_tick"
    title = "Price not on the tick"


class InstrumentNotTradable(InvalidOrder):
    """The instrument exists but is not open for trading."""

    code = "instrument_not_tradable"
    title = "Instrument not tradable"


class IllegalTransition(InvalidInput):
    """The order's status does not allow this change."""

    code = "illegal_transition"
    title = "Illegal order transition"


class NotCancelable(IllegalTransition):
    """The order is already final, or a cancel is already pending."""

    code = "not_cancelable"
    title = "Order not cancelable"


class InvalidFill(IllegalTransition):
    """An execution that the order cannot take: overfill, bad price, untriggered stop."""

    code = "invalid_fill"
    title = "Invalid fill"


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(enum.StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(enum.StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return not TRANSITIONS[self]


# A partial fill while a cancel is pending keeps the order pending_cancel (the cancel request is not
# forgotten), hence the self-loops; rejection only happens before the order is accepted.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_NEW: frozenset(
        {
            OrderStatus.NEW,
            OrderStatus.PENDING_CANCEL,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.NEW: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.PENDING_CANCEL,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.PENDING_CANCEL,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PENDING_CANCEL: frozenset(
        {OrderStatus.PENDING_CANCEL, OrderStatus.FILLED, OrderStatus.CANCELED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}

OPEN_STATUSES = frozenset(s for s in OrderStatus if not s.is_terminal)
# Statuses in which the venue may execute the order (pending_new must be accepted first).
MATCHABLE_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


class OrderEventType(enum.StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    TRIGGERED = "triggered"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


class SubmitOrder(msgspec.Struct, frozen=True, kw_only=True):
    """The command a client sends to place an order (the body of POST /api/v1/orders)."""

    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    """What an order holds back while it works: cash for a buy, shares for a sell."""

    cash: Decimal = ZERO
    qty: Decimal = ZERO


class Order(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    account_id: UUID
    user_id: UUID
    client_order_id: str | None
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: OrderStatus
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    reserved_cash: Decimal
    reserved_qty: Decimal
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    triggered: bool = False
    version: int = 1

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty


class Execution(msgspec.Struct, frozen=True, kw_only=True):
    """One fill at the venue. Its id is unique: a redelivered fill is recognised and ignored."""

    id: UUID
    order_id: UUID
    account_id: UUID
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    at: datetime

    @property
    def notional(self) -> Decimal:
        return self.qty * self.price


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of an order's audit trail, with the order as it became."""

    id: UUID
    order_id: UUID
    type: OrderEventType
    at: datetime
    order: Order
    execution: Execution | None = None
    released_cash: Decimal = ZERO
    released_qty: Decimal = ZERO


def validate_submit(command: SubmitOrder, instrument: Instrument) -> None:
    """Check the static rules of an order: field combinations, quantity, ticks, tradability."""
    if command.symbol != instrument.symbol:
        raise InvalidOrder(f"symbol {command.symbol!r} does not match the instrument")
    if not instrument.tradable:
        raise InstrumentNotTradable(f"{instrument.symbol} is not tradable", symbol=command.symbol)
    needs_limit = command.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = command.type in (OrderType.STOP, OrderType.STOP_LIMIT)
    if needs_limit != (command.limit_price is not None):
        verb = "requires" if needs_limit else "must not have"
        raise InvalidOrder(f"a {command.type} order {verb} a limit_price", field="limit_price")
    if needs_stop != (command.stop_price is not None):
        verb = "requires" if needs_stop else "must not have"
        raise InvalidOrder(f"a {command.type} order {verb} a stop_price", field="stop_price")
    # ioc/fok mean "now or never"; a stop waits for its trigger, so the two contradict each other.
    if needs_stop and command.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        raise InvalidOrder(
            f"time_in_force {command.time_in_force} is only for market and limit orders",
            field="time_in_force",
        )
    if not command.qty.is_finite() or not instrument.whole_lots(command.qty):
        raise InvalidQuantity(
            f"qty must be positive and a multiple of {instrument.lot_size}", field="qty"
        )
    for field, price in (("limit_price", command.limit_price), ("stop_price", command.stop_price)):
        if price is not None and (not price.is_finite() or not instrument.on_tick(price)):
            raise PriceNotOnTick(
                f"{field} must be positive and a multiple of {instrument.tick_size}", field=field
            )
    cid = command.client_order_id
    if cid is not None and not 0 < len(cid) <= MAX_CLIENT_ORDER_ID_LENGTH:
        raise InvalidOrder(
            f"client_order_id must be 1 to {MAX_CLIENT_ORDER_ID_LENGTH} characters",
            field="client_order_id",
        )


def new_order(
    command: SubmitOrder,
    *,
    instrument: Instrument,
    reservation: Reservation,
    account_id: UUID,
    user_id: UUID,
    at: datetime,
    order_id: UUID | None = None,
) -> tuple[Order, OrderEvent]:
    """A pending_new order from a validated command and the reservation risk computed for it."""
    validate_submit(command, instrument)
    if command.side is Side.BUY and (reservation.cash <= 0 or reservation.qty != 0):
        raise InvalidOrder("a buy order must reserve cash and no shares")
    if command.side is Side.SELL and (reservation.qty != command.qty or reservation.cash != 0):
        raise InvalidOrder("a sell order must reserve exactly its qty and no cash")
    order = Order(
        id=order_id or uuid4(),
        account_id=account_id,
        user_id=user_id,
        client_order_id=command.client_order_id,
        symbol=command.symbol,
        side=command.side,
        type=command.type,
        time_in_force=command.time_in_force,
        qty=command.qty,
        limit_price=command.limit_price,
        stop_price=command.stop_price,
        status=OrderStatus.PENDING_NEW,
        filled_qty=ZERO,
        filled_avg_price=None,
        reserved_cash=reservation.cash,
        reserved_qty=reservation.qty,
        reject_reason=None,
        created_at=at,
        updated_at=at,
    )
    return order, _event(order, OrderEventType.NEW, at)


def _event(order: Order, type_: OrderEventType, at: datetime, **extra: Any) -> OrderEvent:
    return OrderEvent(id=uuid4(), order_id=order.id, type=type_, at=at, order=order, **extra)


def _move(
    order: Order, to: OrderStatus, type_: OrderEventType, at: datetime, **changes: Any
) -> tuple[Order, OrderEvent]:
    if to not in TRANSITIONS[order.status]:
        raise IllegalTransition(
            f"order {order.id} cannot go from {order.status} to {to}",
            order_id=str(order.id),
            status=str(order.status),
        )
    extra = {
        k: changes.pop(k) for k in ("execution", "released_cash", "released_qty") if k in changes
    }
    moved = replace(order, status=to, updated_at=at, version=order.version + 1, **changes)
    return moved, _event(moved, type_, at, **extra)


def _release_all(
    order: Order, to: OrderStatus, type_: OrderEventType, at: datetime, **changes: Any
) -> tuple[Order, OrderEvent]:
    return _move(
        order,
        to,
        type_,
        at,
        reserved_cash=ZERO,
        reserved_qty=ZERO,
        released_cash=order.reserved_cash,
        released_qty=order.reserved_qty,
        **changes,
    )


def accept(order: Order, at: datetime) -> tuple[Order, OrderEvent]:
    """pending_new -> new: the worker took the order and sent it to the venue."""
    return _move(order, OrderStatus.NEW, OrderEventType.ACCEPTED, at, submitted_at=at)


def reject(order: Order, reason: str, at: datetime) -> tuple[Order, OrderEvent]:
    """pending_new -> rejected, releasing the whole reservation."""
    return _release_all(
        order, OrderStatus.REJECTED, OrderEventType.REJECTED, at, reject_reason=reason
    )


def request_cancel(order: Order, at: datetime) -> tuple[Order, OrderEvent]:
    """A working order -> pending_cancel; the reservation stays until the cancel is confirmed."""
    if order.is_terminal or order.status is OrderStatus.PENDING_CANCEL:
        raise NotCancelable(f"order {order.id} is {order.status}", order_id=str(order.id))
    return _move(order, OrderStatus.PENDING_CANCEL, OrderEventType.PENDING_CANCEL, at)


def cancel(order: Order, at: datetime) -> tuple[Order, OrderEvent]:
    """A working order -> canceled, releasing what it still reserves."""
    if order.is_terminal:
        raise NotCancelable(f"order {order.id} is {order.status}", order_id=str(order.id))
    return _release_all(order, OrderStatus.CANCELED, OrderEventType.CANCELED, at, canceled_at=at)


def expire(order: Order, at: datetime) -> tuple[Order, OrderEvent]:
    """A working order whose time in force ran out -> expired, releasing what it still reserves."""
    return _release_all(order, OrderStatus.EXPIRED, OrderEventType.EXPIRED, at, expired_at=at)


def trigger(order: Order, at: datetime) -> tuple[Order, OrderEvent]:
    """Mark a stop as triggered: from now on a stop is a market order, a stop_limit a limit."""
    if order.type not in (OrderType.STOP, OrderType.STOP_LIMIT) or order.triggered:
        raise IllegalTransition(f"order {order.id} has no stop left to trigger")
    if order.status not in MATCHABLE_STATUSES:
        raise IllegalTransition(f"order {order.id} is {order.status}, not working")
    moved = replace(order, triggered=True, updated_at=at, version=order.version + 1)
    return moved, _event(moved, OrderEventType.TRIGGERED, at)


def fill(
    order: Order, *, exec_id: UUID, qty: Decimal, price: Decimal, at: datetime
) -> tuple[Order, OrderEvent]:
    """Apply one execution. The event carries the Execution and the reservation it releases.

    A buy releases the part of its reserved cash that belonged to the filled qty: reserved_cash *
    qty / remaining_qty (rounded up to QUANTUM; exact for a limit order, which reserves qty * limit;
    the last fill releases the rest); the actual cost qty * price is what leaves the cash.
    A sell releases exactly the filled qty of its reserved shares.
    """
    remaining = order.remaining_qty
    if not (qty.is_finite() and 0 < qty <= remaining):
        raise InvalidFill(f"fill qty {qty} is not within the remaining {remaining}")
    if not price.is_finite() or price <= 0:
        raise InvalidFill(f"fill price {price} is not positive")
    kind = effective_type(order)
    if kind is None:
        raise InvalidFill(f"stop order {order.id} has not been triggered")
    if kind is OrderType.LIMIT and order.limit_price is not None:
        worse = price > order.limit_price if order.side is Side.BUY else price < order.limit_price
        if worse:
            raise InvalidFill(f"fill price {price} is worse than the limit {order.limit_price}")
    filled = order.filled_qty + qty
    done = filled == order.qty
    prev_value = (order.filled_avg_price or ZERO) * order.filled_qty
    avg = ((prev_value + price * qty) / filled).quantize(QUANTUM)
    if order.side is Side.BUY:
        share = (order.reserved_cash * qty / remaining).quantize(QUANTUM, rounding=ROUND_CEILING)
        released_cash = order.reserved_cash if done else min(share, order.reserved_cash)
        released_qty = ZERO
    else:
        released_cash = ZERO
        released_qty = min(qty, order.reserved_qty)
    if done:
        to = OrderStatus.FILLED
    elif order.status is OrderStatus.PENDING_CANCEL:
        to = OrderStatus.PENDING_CANCEL
    else:
        to = OrderStatus.PARTIALLY_FILLED
    execution = Execution(
        id=exec_id,
        order_id=order.id,
        account_id=order.account_id,
        symbol=order.symbol,
        side=order.side,
        qty=qty,
        price=price,
        at=at,
    )
    return _move(
        order,
        to,
        OrderEventType.FILL if done else OrderEventType.PARTIAL_FILL,
        at,
        filled_qty=filled,
        filled_avg_price=avg,
        filled_at=at if done else order.filled_at,
        reserved_cash=order.reserved_cash - released_cash,
        reserved_qty=order.reserved_qty - released_qty,
        execution=execution,
        released_cash=released_cash,
        released_qty=released_qty,
    )


def effective_type(order: Order) -> OrderType | None:
    """How the order executes now: a triggered stop is market, a triggered stop_limit is limit;
    None for a stop that has not triggered yet."""
    if order.type is OrderType.STOP:
        return OrderType.MARKET if order.triggered else None
    if order.type is OrderType.STOP_LIMIT:
        return OrderType.LIMIT if order.triggered else None
    return order.type
