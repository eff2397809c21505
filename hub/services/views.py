"""How orders, accounts and portfolios look to clients: one shape for REST, WebSocket, SSE and
the audit trail. Amounts are rounded here, once, at the edge."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import msgspec

from hub.domain.accounts import Account
from hub.domain.bars import Bar
from hub.domain.money import to_cents
from hub.domain.orders import Order, OrderEvent
from hub.domain.portfolio import round_places
from hub.domain.positions import Position
from hub.domain.quotes import Quote

PRICE_PLACES = 4
VWAP_PLACES = 4  # a bar's vw: an average of prices, not itself a traded price


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


class FillView(msgspec.Struct, kw_only=True):
    """The execution behind an order event that filled some or all of the order."""

    execution_id: UUID
    price: Decimal
    qty: Decimal
    at: datetime
    position_qty: Decimal  # the owner's position in the symbol once this fill is applied


class OrderUpdate(OrderView, kw_only=True, omit_defaults=True):
    """What the owner's `orders` channel carries: the order as an event left it (the fields
    of OrderView), what happened (`event`, an OrderEventType value) and, for a fill, the
    execution. Alpaca's trade_updates stream is made of these (entrypoints/http/alpaca)."""

    event: str | None = None  # None only on publications from before events were named
    fill: FillView | None = None

    @classmethod
    def after(cls, event: OrderEvent, position_qty: Decimal | None = None) -> OrderUpdate:
        """The publication of `event`; `position_qty` (the position once the event is applied)
        is required for an event with an execution."""
        execution = event.execution
        fill = None
        if execution is not None:
            if position_qty is None:
                raise ValueError("a fill's update needs the position it left")
            fill = FillView(
                execution_id=execution.id,
                price=execution.price,
                qty=execution.qty,
                at=execution.at,
                position_qty=position_qty,
            )
        view = msgspec.structs.asdict(OrderView.of(event.order))
        return cls(**view, event=event.type.value, fill=fill)


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


class BarView(msgspec.Struct, kw_only=True):
    """A bar in a REST or gRPC answer (Alpaca's fields): the bucket's start `t` (UTC), open,
    high, low and close on the tick, volume `v`, trade count `n` and the volume-weighted
    average price `vw` (the close for a bar without volume), rounded to VWAP_PLACES."""

    t: datetime
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 (the wire name)
    c: Decimal
    v: Decimal
    n: int
    vw: Decimal

    @classmethod
    def of(cls, b: Bar) -> BarView:
        return cls(**_bar_fields(b))


class LiveBarView(BarView, kw_only=True):
    """The forming bar on its `bars:<SYMBOL>` channel: a BarView with its symbol and timeframe."""

    symbol: str
    timeframe: str

    @classmethod
    def of(cls, b: Bar) -> LiveBarView:
        # Once per quote in the feed: the fields straight from the bar, no BarView in between.
        return cls(**_bar_fields(b), symbol=b.symbol, timeframe=b.timeframe.value)


def _bar_fields(b: Bar) -> dict[str, Any]:
    return {"t": b.t, "o": b.o, "h": b.h, "l": b.l, "c": b.c, "v": b.v, "n": b.n, "vw": vwap(b)}


def vwap(b: Bar) -> Decimal:
    return round_places(b.vw, VWAP_PLACES)
