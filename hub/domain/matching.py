"""The simulated venue's matching rules: when a stop triggers, at what price an order executes
against a quote, and one matching pass for a working order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from hub.domain.errors import InvalidFill, InvalidOrder
from hub.domain.orders import (
    MATCHABLE_STATUSES,
    Order,
    OrderEvent,
    OrderType,
    Side,
    TimeInForce,
    cancel,
    effective_type,
    fill,
    trigger,
)
from hub.domain.quotes import Quote


def stop_triggered(order: Order, quote: Quote) -> bool:
    """Whether the stop condition holds: buy if last or ask >= stop, sell if last or bid <= stop.

    True for a stop already triggered, False for orders without a stop. Zero prices mean "no
    quote on that side" and never trigger.
    """
    if order.stop_price is None:
        return False
    if order.triggered:
        return True
    stop = order.stop_price
    if order.side is Side.BUY:
        return any(p > 0 and p >= stop for p in (quote.last, quote.ask))
    return any(p > 0 and p <= stop for p in (quote.last, quote.bid))


def marketable_price(order: Order, quote: Quote) -> Decimal | None:
    """The price the order would execute at now, or None.

    Buys take the ask, sells hit the bid; a limit executes only when the touch is at or better than
    its limit, and then at the touch (the price improvement goes to the client).
    """
    kind = effective_type(order)
    if kind is None:
        return None
    touch = quote.touch(order.side)
    if touch <= 0:
        return None
    if kind is OrderType.MARKET:
        return touch
    limit = order.limit_price
    if limit is None:
        raise InvalidOrder(f"{order.type} order {order.id} has no limit_price")
    marketable = touch <= limit if order.side is Side.BUY else touch >= limit
    return touch if marketable else None


def match_quote(
    order: Order, quote: Quote, *, exec_id: UUID, at: datetime
) -> tuple[Order, list[OrderEvent]]:
    """Run the simulated venue once for a working order against the latest quote.

    The venue fills the whole remaining qty when the order is marketable (so fok is simply
    "fill fully if marketable, else cancel", and ioc the same); a stop first triggers. An ioc/fok
    order that is not marketable is canceled. Orders that are not new/partially_filled are left
    alone: pending_new must be accepted and pending_cancel should be canceled by the caller.
    """
    if order.status not in MATCHABLE_STATUSES:
        return order, []
    if quote.symbol != order.symbol:
        raise InvalidFill(f"quote for {quote.symbol} cannot execute an order for {order.symbol}")
    events: list[OrderEvent] = []
    if effective_type(order) is None:
        if not stop_triggered(order, quote):
            return order, events
        order, event = trigger(order, at)
        events.append(event)
    price = marketable_price(order, quote)
    if price is not None:
        order, event = fill(order, exec_id=exec_id, qty=order.remaining_qty, price=price, at=at)
        events.append(event)
    elif order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        order, event = cancel(order, at)
        events.append(event)
    return order, events
