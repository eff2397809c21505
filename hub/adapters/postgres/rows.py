"""Orders, positions and accounts as PostgreSQL rows: the column lists and types, and the
conversions both ways, shared by the unit of work, the order desk and the read side."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from hub.domain.accounts import Account
from hub.domain.orders import Order, OrderEvent
from hub.domain.positions import Position

ORDER_FIELDS = Order.__struct_fields__
ORDER_COLUMNS = ", ".join(ORDER_FIELDS)
POSITION_COLUMNS = "account_id, user_id, symbol, qty, reserved_qty, avg_entry_price, realized_pl"
ACCOUNT_COLUMNS = "id, user_id, cash, reserved_cash, currency, created_at"
# SQL types of the order columns: batch statements pass each column as one typed array.
ORDER_TYPES = {
    "id": "uuid", "account_id": "uuid", "user_id": "uuid", "client_order_id": "text",
    "symbol": "text", "side": "text", "type": "text", "time_in_force": "text", "qty": "numeric",
    "limit_price": "numeric", "stop_price": "numeric", "status": "text",
    "filled_qty": "numeric", "filled_avg_price": "numeric", "reserved_cash": "numeric",
    "reserved_qty": "numeric", "reject_reason": "text", "created_at": "timestamptz",
    "updated_at": "timestamptz", "submitted_at": "timestamptz", "filled_at": "timestamptz",
    "canceled_at": "timestamptz", "expired_at": "timestamptz", "triggered": "boolean",
    "version": "integer",
}  # fmt: skip
assert tuple(ORDER_TYPES) == ORDER_FIELDS, "orders columns and the Order struct diverged"
event_encoder = msgspec.json.Encoder()
event_decoder = msgspec.json.Decoder(OrderEvent)


def order_values(order: Order) -> list[Any]:
    return [
        v.value if hasattr(v, "value") and not isinstance(v, bool) else v
        for v in (getattr(order, name) for name in ORDER_FIELDS)
    ]


def to_order(row: asyncpg.Record) -> Order:
    return msgspec.convert(dict(row), Order)


def to_position(row: asyncpg.Record) -> Position:
    return Position(**{k: row[k] for k in Position.__struct_fields__})


def to_account(row: asyncpg.Record) -> Account:
    """The account columns of a row that may carry others (a joined read)."""
    return Account(**{k: row[k] for k in Account.__struct_fields__})
