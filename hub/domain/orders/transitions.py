"""The status changes of a working order other than fills: accept, reject, cancel, expire, trigger.

Each checks the move against ``TRANSITIONS``, bumps ``version`` and returns the event; moves to a
final status release whatever the order still reserves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from msgspec.structs import replace

from hub.domain.errors import IllegalTransition, NotCancelable
from hub.domain.orders.model import ZERO, Order, OrderEvent, OrderEventType, OrderType
from hub.domain.orders.status import MATCHABLE_STATUSES, TRANSITIONS, OrderStatus


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
