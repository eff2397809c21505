"""How orders, accounts and portfolios look to clients: one shape for REST, WebSocket, SSE and
the audit trail. Amounts are rounded here, once, at the edge."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

import msgspec

from hub.domain.accounts import Account
from hub.domain.money import to_cents
from hub.domain.orders import Order
from hub.domain.portfolio import round_places
from hub.domain.positions import Position
from hub.domain.quotes import Quote

PRICE_PLACES = 4


class OrderView(msgspec.Struct, kw_only=True):
    id: UUID
    client_order_id: str | None
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: str
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    filled_at: datetime | None
    canceled_at: datetime | None
    expired_at: datetime | None
    version: int  # grows with every change: a client keeps the highest it has seen

    @classmethod
    def of(cls, o: Order) -> OrderView:
        avg = o.filled_avg_price
        return cls(
            id=o.id,
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=o.side.value,
            type=o.type.value,
            time_in_force=o.time_in_force.value,
            qty=o.qty,
            filled_qty=o.filled_qty,
            filled_avg_price=None if avg is None else round_places(avg, PRICE_PLACES),
            limit_price=o.limit_price,
            stop_price=o.stop_price,
            status=o.status.value,
            reject_reason=o.reject_reason,
            created_at=o.created_at,
            updated_at=o.updated_at,
            submitted_at=o.submitted_at,
            filled_at=o.filled_at,
            canceled_at=o.canceled_at,
            expired_at=o.expired_at,
            version=o.version,
        )


class AccountView(msgspec.Struct, kw_only=True):
    id: UUID
    cash: Decimal
    reserved_cash: Decimal
    buying_power: Decimal
    equity: Decimal
    currency: str
    status: Literal["active"]
    created_at: datetime

    @classmethod
    def of(cls, account: Account, positions_value: Decimal = Decimal(0)) -> AccountView:
        return cls(
            id=account.id,
            cash=to_cents(account.cash),
            reserved_cash=to_cents(account.reserved_cash),
            buying_power=to_cents(account.buying_power),
            equity=to_cents(account.cash + positions_value),
            currency=account.currency,
            status="active",
            created_at=account.created_at,
        )


class PositionLine(msgspec.Struct, kw_only=True):
    symbol: str
    qty: Decimal
    qty_available: Decimal
    avg_entry_price: Decimal
    realized_pl: Decimal


class LedgerUpdate(msgspec.Struct, kw_only=True):
    """Pushed on the owner's `portfolio` channel whenever an order moves cash or shares: the
    account's cash and the position in the order's symbol, as they now are."""

    cash: Decimal
    reserved_cash: Decimal
    buying_power: Decimal
    position: PositionLine

    @classmethod
    def of(cls, account: Account, position: Position) -> LedgerUpdate:
        return cls(
            cash=to_cents(account.cash),
            reserved_cash=to_cents(account.reserved_cash),
            buying_power=to_cents(account.buying_power),
            position=PositionLine(
                symbol=position.symbol,
                qty=position.qty,
                qty_available=position.qty_available,
                avg_entry_price=round_places(position.avg_entry_price, PRICE_PLACES),
                realized_pl=to_cents(position.realized_pl),
            ),
        )


class QuoteView(Quote, frozen=True, kw_only=True):
    """A quote on the wire (REST, WebSocket, SSE, and what gRPC decodes from the fan-out): the
    domain quote's fields, and the day's change beside them."""

    change: Decimal
    change_percent: Decimal

    @classmethod
    def of(cls, q: Quote) -> QuoteView:
        fields = msgspec.structs.asdict(q)
        return cls(**fields, change=q.day_change, change_percent=q.day_change_percent)
