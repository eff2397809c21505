"""The order's data: its enums, the submit command, the Order, its executions and events."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from hub.domain.orders.status import OrderStatus

ZERO = Decimal(0)
# Amounts are stored as NUMERIC(28, 10). Derived amounts that can have more places (averages,
# realized P&L, proportional releases) are quantized to this here, so that the memory adapters
# and Postgres hold exactly the same values.
QUANTUM = Decimal("1e-10")


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


def effective_type(order: Order) -> OrderType | None:
    """How the order executes now: a triggered stop is market, a triggered stop_limit is limit;
    None for a stop that has not triggered yet."""
    if order.type is OrderType.STOP:
        return OrderType.MARKET if order.triggered else None
    if order.type is OrderType.STOP_LIMIT:
        return OrderType.LIMIT if order.triggered else None
    return order.type
