"""Builders for domain tests: an instrument, a quote, an account and orders at any stage."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from msgspec.structs import replace

from hub.domain.accounts import Account
from hub.domain.instruments import Category, Instrument
from hub.domain.orders import (
    Order,
    OrderType,
    Reservation,
    Side,
    SubmitOrder,
    TimeInForce,
    accept,
    new_order,
)
from hub.domain.quotes import Quote

NOW = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York
ACCOUNT_ID = UUID("00000000-0000-0000-0000-00000000000a")
USER_ID = UUID("00000000-0000-0000-0000-00000000000b")

D = Decimal


def instrument(symbol: str = "AAPL", **changes: object) -> Instrument:
    base = Instrument(
        symbol=symbol,
        name=symbol,
        category=Category.STOCK,
        currency="USD",
        tick_size=D("0.01"),
        lot_size=D(1),
    )
    return replace(base, **changes)


def quote(
    symbol: str = "AAPL",
    *,
    bid: str = "99.99",
    ask: str = "100.01",
    last: str = "100.00",
    prev_close: str = "95.00",
    at: datetime = NOW,
) -> Quote:
    return Quote(
        symbol=symbol,
        bid=D(bid),
        ask=D(ask),
        last=D(last),
        bid_size=D(100),
        ask_size=D(100),
        open=D(last),
        high=D(last),
        low=D(last),
        prev_close=D(prev_close),
        timestamp=at,
    )


def account(cash: str = "100000", reserved: str = "0") -> Account:
    return Account(
        id=ACCOUNT_ID,
        user_id=USER_ID,
        cash=D(cash),
        reserved_cash=D(reserved),
        currency="USD",
        created_at=NOW,
    )


def submit(
    side: Side = Side.BUY,
    type_: OrderType = OrderType.LIMIT,
    qty: str = "10",
    *,
    limit: str | None = "100.00",
    stop: str | None = None,
    tif: TimeInForce = TimeInForce.DAY,
    symbol: str = "AAPL",
) -> SubmitOrder:
    return SubmitOrder(
        symbol=symbol,
        side=side,
        type=type_,
        qty=D(qty),
        time_in_force=tif,
        limit_price=None if limit is None else D(limit),
        stop_price=None if stop is None else D(stop),
    )


def order(
    side: Side = Side.BUY,
    type_: OrderType = OrderType.LIMIT,
    qty: str = "10",
    *,
    limit: str | None = "100.00",
    stop: str | None = None,
    tif: TimeInForce = TimeInForce.DAY,
    reserved_cash: str | None = None,
    accepted: bool = True,
) -> Order:
    """An order (accepted unless told otherwise) with the natural reservation for its side."""
    command = submit(side, type_, qty, limit=limit, stop=stop, tif=tif)
    if side is Side.BUY:
        cash = D(reserved_cash) if reserved_cash else D(qty) * D(limit or stop or "100.01")
        reservation = Reservation(cash=cash)
    else:
        reservation = Reservation(qty=D(qty))
    created, _ = new_order(
        command,
        instrument=instrument(),
        reservation=reservation,
        account_id=ACCOUNT_ID,
        user_id=USER_ID,
        at=NOW,
        order_id=uuid4(),
    )
    return accept(created, NOW)[0] if accepted else created
