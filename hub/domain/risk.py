"""Pre-trade risk checks: may this order be accepted, and what must it reserve?

``check_order`` runs every check in a fixed order (static rules, market hours, quote, collar,
notional, then cash or shares) and returns the Reservation the order pipeline must take in the
same transaction that stores the order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import msgspec

from hub.domain.accounts import Account
from hub.domain.errors import (
    InsufficientBuyingPower,
    InsufficientShares,
    MarketClosed,
    MaxNotionalExceeded,
    PriceOutsideCollar,
    QuoteUnavailable,
    StaleQuote,
)
from hub.domain.instruments import Instrument
from hub.domain.money import CENT
from hub.domain.orders import Reservation, Side, SubmitOrder, validate_submit
from hub.domain.quotes import Quote

__all__ = [
    "RiskLimits",
    "check_order",
    "reference_price",
    "required_cash",
]


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_quote_age: timedelta = timedelta(seconds=60)
    # Limit and stop prices must lie within last * (1 +/- price_collar): the original server's band.
    price_collar: Decimal = Decimal("0.10")
    # Market and stop buys have no price of their own: reserve the ask plus this much for slippage.
    market_buy_buffer: Decimal = Decimal("0.05")
    max_notional: Decimal = Decimal(1_000_000)


DEFAULT_LIMITS = RiskLimits()


def _fresh_quote(
    command: SubmitOrder, quote: Quote | None, now: datetime, limits: RiskLimits
) -> Quote:
    if quote is None or quote.symbol != command.symbol:
        raise QuoteUnavailable(f"no quote for {command.symbol}", symbol=command.symbol)
    if now - quote.timestamp > limits.max_quote_age:
        raise StaleQuote(
            f"the quote for {command.symbol} is from {quote.timestamp.isoformat()}",
            symbol=command.symbol,
        )
    touch = quote.touch(command.side)
    if quote.last <= 0 or touch <= 0:
        raise QuoteUnavailable(f"no {command.side} side in the market for {command.symbol}")
    return quote


def reference_price(command: SubmitOrder, quote: Quote) -> Decimal:
    """The per-unit price the order is valued at: its limit, else the touch (or the stop when
    that is further away, since a stop executes around its stop price)."""
    if command.limit_price is not None:
        return command.limit_price
    touch = quote.touch(command.side)
    if command.stop_price is None:
        return touch
    if command.side is Side.BUY:
        return max(touch, command.stop_price)
    return min(touch, command.stop_price)


def required_cash(
    command: SubmitOrder, quote: Quote, limits: RiskLimits = DEFAULT_LIMITS
) -> Decimal:
    """Cash a buy must reserve: exactly qty * limit for limit and stop_limit (so each fill at or
    below the limit is covered by its proportional release); qty * reference price *
    (1 + buffer), rounded up to the cent, for market and stop."""
    if command.limit_price is not None:
        return command.qty * command.limit_price
    price = reference_price(command, quote) * (1 + limits.market_buy_buffer)
    return (command.qty * price).quantize(CENT, rounding=ROUND_CEILING)


def _check_collar(command: SubmitOrder, quote: Quote, limits: RiskLimits) -> None:
    band = quote.last * limits.price_collar
    low, high = quote.last - band, quote.last + band
    for field, price in (("limit_price", command.limit_price), ("stop_price", command.stop_price)):
        if price is not None and not low <= price <= high:
            raise PriceOutsideCollar(
                f"{field} {price} is outside {low}..{high} "
                f"(±{limits.price_collar * 100}% around the last price {quote.last})",
                field=field,
            )


def check_order(
    command: SubmitOrder,
    *,
    instrument: Instrument,
    quote: Quote | None,
    account: Account,
    available_qty: Decimal,
    market_open: bool,
    now: datetime,
    limits: RiskLimits = DEFAULT_LIMITS,
) -> Reservation:
    """Accept or refuse an order before it is stored; return what it must reserve.

    ``available_qty`` is the position's qty_available (0 when there is none). Every order type
    needs a fresh quote: market and stop orders to be priced, limit orders for the collar.
    Raises a 422-class error (InvalidOrder and subclasses) or a 403-class one
    (InsufficientBuyingPower, InsufficientShares).
    """
    validate_submit(command, instrument)
    if not market_open:
        raise MarketClosed(f"the market for {command.symbol} is closed", symbol=command.symbol)
    fresh = _fresh_quote(command, quote, now, limits)
    _check_collar(command, fresh, limits)
    notional = command.qty * reference_price(command, fresh)
    if notional > limits.max_notional:
        raise MaxNotionalExceeded(
            f"order value {notional} exceeds the maximum {limits.max_notional}",
            max_notional=str(limits.max_notional),
        )
    if command.side is Side.SELL:
        if command.qty > available_qty:
            raise InsufficientShares(
                f"cannot sell {command.qty} {command.symbol}: {available_qty} available",
                symbol=command.symbol,
            )
        return Reservation(qty=command.qty)
    cash = required_cash(command, fresh, limits)
    if cash > account.buying_power:
        raise InsufficientBuyingPower(
            f"order needs {cash}, buying power is {account.buying_power}",
            required=str(cash),
            buying_power=str(account.buying_power),
        )
    return Reservation(cash=cash)
