"""The Order aggregate: the submit command, its validation, the status machine and the fill rules.

Every change is a pure function ``(order, ...) -> (new_order, event)``: the order is a frozen
Struct, its ``version`` grows by one per transition (repositories compare-and-set on it), and the
event carries a snapshot of the new order for the append-only audit trail. An order also holds what
it reserved at submission (cash for a buy, shares for a sell); every event says how much of that
reservation it released, so the ledger (``hub.domain.positions``) can apply it to the account and
the position without recomputing anything.

The package holds one concept per module: ``model`` (the enums, the command, the Order, its
executions and events), ``status`` (the status machine), ``submit`` (validation and the new
order), ``transitions`` (accept, reject, cancel, expire, trigger) and ``fills``. Import from
``hub.domain.orders``; the modules are its layout, not its interface. What can go wrong with an
order (InvalidOrder and its kinds, IllegalTransition, NotCancelable, InvalidFill) is in
``hub.domain.errors``, with every other domain error.
"""

from __future__ import annotations

from hub.domain.orders.fills import fill
from hub.domain.orders.model import (
    QUANTUM,
    ZERO,
    Execution,
    Order,
    OrderEvent,
    OrderEventType,
    OrderType,
    Reservation,
    Side,
    SubmitOrder,
    TimeInForce,
    effective_type,
)
from hub.domain.orders.status import MATCHABLE_STATUSES, OPEN_STATUSES, TRANSITIONS, OrderStatus
from hub.domain.orders.submit import MAX_CLIENT_ORDER_ID_LENGTH, new_order, validate_submit
from hub.domain.orders.transitions import accept, cancel, expire, reject, request_cancel, trigger

__all__ = [
    "MATCHABLE_STATUSES",
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "OPEN_STATUSES",
    "QUANTUM",
    "TRANSITIONS",
    "ZERO",
    "Execution",
    "Order",
    "OrderEvent",
    "OrderEventType",
    "OrderStatus",
    "OrderType",
    "Reservation",
    "Side",
    "SubmitOrder",
    "TimeInForce",
    "accept",
    "cancel",
    "effective_type",
    "expire",
    "fill",
    "new_order",
    "reject",
    "request_cancel",
    "trigger",
    "validate_submit",
]
