"""Placing an order: the static rules of a SubmitOrder and the pending_new order it makes."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from hub.domain.errors import (
    InstrumentNotTradable,
    InvalidOrder,
    InvalidQuantity,
    PriceNotOnTick,
)
from hub.domain.instruments import Instrument
from hub.domain.orders.model import (
    ZERO,
    Order,
    OrderEvent,
    OrderEventType,
    OrderType,
    Reservation,
    Side,
    SubmitOrder,
    TimeInForce,
)
from hub.domain.orders.status import OrderStatus
from hub.domain.orders.transitions import _event

MAX_CLIENT_ORDER_ID_LENGTH = 128


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
