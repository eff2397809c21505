"""Alpaca's `trade_updates` events, made from the publications of Hub's `orders` channel.

Each publication is an OrderUpdate (hub/services/views.py): the order as an event left it, the
event's type and, for a fill, the execution and the position it left. Alpaca names the events a
little differently: Hub's `new` (the order was created) is Alpaca's `pending_new`, Hub's
`accepted` is Alpaca's `new`. A stop order's `triggered` has no Alpaca event and is not sent
(the order stays `new` until it fills). A publication from before events were named is read
from its status. Money and quantities are decimal strings, as Alpaca's trade_updates carry them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from hub.domain.instruments import Category
from hub.entrypoints.http.alpaca.order_shapes import OrderOut
from hub.services.views import OrderUpdate

STREAM = "trade_updates"

_EVENTS = {  # Hub's OrderEventType value -> Alpaca's event
    "new": "pending_new",
    "accepted": "new",
    "partial_fill": "partial_fill",
    "fill": "fill",
    "pending_cancel": "pending_cancel",
    "canceled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
}
_BY_STATUS = {  # an update without an event: what its status says happened
    "pending_new": "pending_new",
    "new": "new",
    "partially_filled": "partial_fill",
    "filled": "fill",
    "pending_cancel": "pending_cancel",
    "canceled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
}

decoder = msgspec.json.Decoder(OrderUpdate)


class TradeUpdateOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    event: str
    timestamp: datetime
    order: OrderOut
    execution_id: uuid.UUID | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    position_qty: Decimal | None = None
    seq: int = 0  # Hub's addition: the event's place in the channel, for `since`


class Frame(msgspec.Struct):
    stream: str
    data: Any


def event_of(update: OrderUpdate) -> str | None:
    """Alpaca's name for what happened; None for an event Alpaca does not send."""
    if update.event is None:
        return _BY_STATUS.get(update.status)
    return _EVENTS.get(update.event)


def trade_update(update: OrderUpdate, category: Category, seq: int) -> TradeUpdateOut | None:
    event = event_of(update)
    if event is None:
        return None
    out = TradeUpdateOut(
        event=event,
        timestamp=update.updated_at,
        order=OrderOut.of_view(update, category),
        seq=seq,
    )
    fill = update.fill
    if fill is not None:
        out.timestamp = fill.at
        out.execution_id = fill.execution_id
        out.price = fill.price
        out.qty = fill.qty
        out.position_qty = fill.position_qty
    return out
