"""Pre-trade risk checks and the reservation they compute."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from hub.domain.accounts import Account
from hub.domain.errors import (
    Forbidden,
    InsufficientBuyingPower,
    InsufficientShares,
    InvalidInput,
    InvalidQuantity,
    MarketClosed,
    MaxNotionalExceeded,
    PriceOutsideCollar,
    QuoteUnavailable,
    StaleQuote,
)
from hub.domain.orders import OrderType, Reservation, Side, SubmitOrder
from hub.domain.quotes import Quote
from hub.domain.risk import RiskLimits, check_order, required_cash

from .factories import NOW, D, account, instrument, quote, submit


def check(
    command: SubmitOrder,
    *,
    q: Quote | None = None,
    acct: Account | None = None,
    available: str = "0",
    market_open: bool = True,
    limits: RiskLimits | None = None,
) -> Reservation:
    return check_order(
        command,
        instrument=instrument(),
        quote=quote() if q is None else q,
        account=acct or account(),
        available_qty=D(available),
        market_open=market_open,
        now=NOW,
        limits=limits or RiskLimits(),
    )


def test_limit_buy_reserves_qty_times_limit() -> None:
    assert check(submit(qty="10", limit="100.50")) == Reservation(cash=D("1005.00"))


def test_market_buy_reserves_ask_plus_buffer_rounded_up() -> None:
    reservation = check(submit(type_=OrderType.MARKET, qty="3", limit=None), q=quote(ask="100.01"))
    assert reservation.cash == D("315.04")  # 3 * 100.01 * 1.05 = 315.0315
    assert reservation.qty == 0


def test_stop_buy_reserves_from_the_stop_when_above_the_ask() -> None:
    command = submit(type_=OrderType.STOP, qty="10", limit=None, stop="105.00")
    assert check(command).cash == D("1102.50")
    stop_limit = submit(type_=OrderType.STOP_LIMIT, qty="10", limit="106.00", stop="105.00")
    assert check(stop_limit).cash == D("1060.00")


def test_sell_reserves_shares() -> None:
    assert check(submit(Side.SELL, qty="5"), available="5") == Reservation(qty=D(5))
    with pytest.raises(InsufficientShares) as info:
        check(submit(Side.SELL, qty="6"), available="5")
    assert info.value.code == "insufficient_shares" and isinstance(info.value, Forbidden)


def test_buying_power() -> None:
    rich_enough = account("1000.00")
    assert check(submit(qty="10", limit="100.00"), acct=rich_enough).cash == D("1000.00")
    with pytest.raises(InsufficientBuyingPower) as info:
        check(submit(qty="10", limit="100.00"), acct=account("1000.00", reserved="0.01"))
    assert info.value.code == "insufficient_buying_power" and isinstance(info.value, Forbidden)


def test_static_rules_come_first() -> None:
    with pytest.raises(InvalidQuantity):
        check(submit(qty="0"), market_open=False)


def test_market_closed() -> None:
    with pytest.raises(MarketClosed) as info:
        check(submit(), market_open=False)
    assert info.value.code == "market_closed" and isinstance(info.value, InvalidInput)


@pytest.mark.parametrize(
    "q",
    [
        quote("MSFT"),
        quote(ask="0"),
        quote(last="0"),
    ],
)
def test_quote_unavailable(q: Quote) -> None:
    with pytest.raises(QuoteUnavailable) as info:
        check(submit(type_=OrderType.MARKET, limit=None), q=q)
    assert info.value.code == "quote_unavailable"


def test_missing_quote() -> None:
    with pytest.raises(QuoteUnavailable):
        check_order(
            submit(),
            instrument=instrument(),
            quote=None,
            account=account(),
            available_qty=D(0),
            market_open=True,
            now=NOW,
        )


def test_stale_quote() -> None:
    old = quote(at=NOW - timedelta(seconds=61))
    with pytest.raises(StaleQuote) as info:
        check(submit(type_=OrderType.MARKET, limit=None), q=old)
    assert info.value.code == "quote_unavailable"
    check(submit(), q=old, limits=RiskLimits(max_quote_age=timedelta(minutes=5)))


@pytest.mark.parametrize(
    ("limit", "stop", "ok"),
    [
        ("110.00", None, True),
        ("110.01", None, False),
        ("90.00", None, True),
        ("89.99", None, False),
        (None, "110.00", True),
        (None, "110.01", False),
    ],
)
def test_price_collar(limit: str | None, stop: str | None, ok: bool) -> None:
    type_ = OrderType.LIMIT if limit else OrderType.STOP
    command = submit(Side.SELL, type_, qty="1", limit=limit, stop=stop)
    if ok:
        check(command, available="1")
    else:
        with pytest.raises(PriceOutsideCollar) as info:
            check(command, available="1")
        assert info.value.code == "price_outside_collar"


def test_max_notional() -> None:
    rich = account("10000000")
    check(submit(qty="10000", limit="100.00"), acct=rich)
    with pytest.raises(MaxNotionalExceeded) as info:
        check(submit(qty="10001", limit="100.00"), acct=rich)
    assert info.value.code == "max_notional_exceeded"
    with pytest.raises(MaxNotionalExceeded):
        check(submit(Side.SELL, qty="10", limit="100.00"), limits=RiskLimits(max_notional=D(999)))


def test_required_cash() -> None:
    btc = submit(type_=OrderType.LIMIT, qty="0.0003", limit="65000.01", symbol="BTCUSD")
    assert required_cash(btc, quote("BTCUSD")) == D("19.500003")  # exact for limits
    market = submit(type_=OrderType.MARKET, qty="0.0003", limit=None, symbol="BTCUSD")
    btc_quote = quote("BTCUSD", ask="65000.01")
    assert required_cash(market, btc_quote) == D("20.48")  # 20.47500315 rounded up
    assert isinstance(required_cash(btc, quote("BTCUSD")), Decimal)
