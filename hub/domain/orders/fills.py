"""Applying an execution to an order: the checks, the average price, the reservation released."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from uuid import UUID

from hub.domain.errors import InvalidFill
from hub.domain.orders.model import (
    QUANTUM,
    ZERO,
    Execution,
    Order,
    OrderEvent,
    OrderEventType,
    OrderType,
    Side,
    effective_type,
)
from hub.domain.orders.status import OrderStatus
from hub.domain.orders.transitions import _move


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
