"""An order as Alpaca shows it, and an order request as Alpaca's clients send it.

Hub's order statuses are a subset of Alpaca's, with the same names. What Alpaca never leaves
null is filled in: `client_order_id` (the order id, for an order placed without one through
another API) and `submitted_at` (its creation time until the venue has it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import msgspec

from hub.domain.errors import InvalidOrder
from hub.domain.instruments import Category
from hub.domain.orders import Order, OrderStatus, OrderType, Side, SubmitOrder, TimeInForce
from hub.entrypoints.http.alpaca import params
from hub.entrypoints.http.alpaca.assets import asset_class, asset_id
from hub.services.views import OrderView

_INTENT = {Side.BUY: "buy_to_open", Side.SELL: "sell_to_close"}  # long only


class OrderOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    client_order_id: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime
    filled_at: datetime | None
    expired_at: datetime | None
    canceled_at: datetime | None
    failed_at: datetime | None
    replaced_at: None = None
    replaced_by: None = None
    replaces: None = None
    asset_id: uuid.UUID
    symbol: str
    asset_class: str
    notional: None = None
    qty: Decimal
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    order_class: str = "simple"
    order_type: str
    type: str
    side: str
    position_intent: str
    time_in_force: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: str
    extended_hours: bool = False
    legs: None = None
    trail_percent: None = None
    trail_price: None = None
    hwm: None = None
    expires_at: None = None
    reject_reason: str | None  # Hub's addition: why a rejected order was refused

    @classmethod
    def of(cls, order: Order, category: Category) -> OrderOut:
        return cls.of_view(OrderView.of(order), category)  # rounded as every other API shows it

    @classmethod
    def of_view(cls, view: OrderView, category: Category) -> OrderOut:
        """The order as Hub's other APIs show it (REST, and the `orders` channel's events)."""
        return cls(
            id=view.id,
            client_order_id=view.client_order_id or str(view.id),
            created_at=view.created_at,
            updated_at=view.updated_at,
            submitted_at=view.submitted_at or view.created_at,
            filled_at=view.filled_at,
            expired_at=view.expired_at,
            canceled_at=view.canceled_at,
            failed_at=view.updated_at if view.status == OrderStatus.REJECTED.value else None,
            asset_id=asset_id(view.symbol),
            symbol=view.symbol,
            asset_class=asset_class(category),
            qty=view.qty,
            filled_qty=view.filled_qty,
            filled_avg_price=view.filled_avg_price,
            order_type=view.type,
            type=view.type,
            side=view.side,
            position_intent=_INTENT[Side(view.side)],
            time_in_force=view.time_in_force,
            limit_price=view.limit_price,
            stop_price=view.stop_price,
            status=view.status,
            reject_reason=view.reject_reason,
        )


_SIMPLE = ("", "simple")
_UNSUPPORTED = ("trail_price", "trail_percent", "take_profit", "stop_loss", "legs")


class OrderRequest(msgspec.Struct, kw_only=True):
    """POST /v2/orders. Unknown fields are ignored (extended_hours, position_intent, ...), as
    Alpaca's own server does; numbers may be JSON numbers or decimal strings."""

    symbol: str | None = None
    qty: msgspec.Raw = params.optional_raw()
    notional: msgspec.Raw = params.optional_raw()
    side: str | None = None
    type: str | None = None
    time_in_force: str | None = None
    limit_price: msgspec.Raw = params.optional_raw()
    stop_price: msgspec.Raw = params.optional_raw()
    client_order_id: str | None = None
    order_class: str | None = None
    trail_price: msgspec.Raw = params.optional_raw()
    trail_percent: msgspec.Raw = params.optional_raw()
    take_profit: msgspec.Raw = params.optional_raw()
    stop_loss: msgspec.Raw = params.optional_raw()
    legs: msgspec.Raw = params.optional_raw()

    def command(self) -> SubmitOrder:
        """The domain command; InvalidOrder (422) for what Hub cannot trade."""
        if (self.order_class or "").lower() not in _SIMPLE:
            raise InvalidOrder(
                f"order_class {self.order_class} is not supported: only simple orders",
                field="order_class",
            )
        for name in _UNSUPPORTED:
            if bytes(getattr(self, name)) != b"null":
                raise InvalidOrder(f"{name} is not supported", field=name)
        if params.decimal(self.notional, "notional") is not None:
            raise InvalidOrder("notional orders are not supported: send qty", field="notional")
        if not self.symbol:
            raise InvalidOrder("symbol is required", field="symbol")
        qty = params.decimal(self.qty, "qty")
        if qty is None:
            raise InvalidOrder("qty is required", field="qty")
        return SubmitOrder(
            symbol=params.symbol(self.symbol),
            side=_enum(Side, self.side, "side", None),
            type=_enum(OrderType, self.type, "type", None),
            qty=qty,
            time_in_force=_enum(TimeInForce, self.time_in_force, "time_in_force", TimeInForce.DAY),
            limit_price=params.decimal(self.limit_price, "limit_price"),
            stop_price=params.decimal(self.stop_price, "stop_price"),
            # Alpaca makes one when none is sent; so does Hub here, so that it is never null.
            client_order_id=self.client_order_id or str(uuid.uuid4()),
        )


E = TypeVar("E", Side, OrderType, TimeInForce)


def _enum(kind: type[E], raw: str | None, field: str, default: E | None) -> E:
    if raw is None or raw == "":
        if default is None:
            raise InvalidOrder(f"{field} is required", field=field)
        return default
    try:
        return kind(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidOrder(f"{field} must be one of {allowed}", field=field) from None
