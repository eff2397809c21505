"""Portfolio valuation at the latest quotes, and the original server's aggregation by category.

Everything is computed unrounded; ``rounded`` rounds a finished valuation once, for display:
money to cents, percentages to 2 places, fractions (plpc) to 4, average prices to 4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import msgspec
from msgspec.structs import replace

from hub.domain.accounts import Account
from hub.domain.instruments import Category
from hub.domain.money import to_cents
from hub.domain.positions import Position
from hub.domain.quotes import Quote

ZERO = Decimal(0)


class PositionValuation(msgspec.Struct, frozen=True, kw_only=True):
    """One open position valued at the last price. ``priced`` is False when there was no quote:
    the position is then valued at its average entry price (no P&L shown rather than a wrong one).
    """

    symbol: str
    category: Category
    qty: Decimal
    qty_available: Decimal
    avg_entry_price: Decimal
    cost_basis: Decimal
    current_price: Decimal
    market_value: Decimal
    unrealized_pl: Decimal
    unrealized_plpc: Decimal  # a fraction, as Alpaca: 0.0523 is +5.23 %
    lastday_price: Decimal | None
    change_today: Decimal | None  # a fraction of lastday_price
    unrealized_intraday_pl: Decimal | None
    priced: bool


class AssetLine(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    quantity: Decimal
    average_price: Decimal
    current_price: Decimal
    category: Category


class CategoryAggregation(msgspec.Struct, frozen=True, kw_only=True):
    category: Category
    total_invested: Decimal
    current_total: Decimal
    pnl: Decimal
    pnl_percentage: Decimal  # pnl / total_invested * 100, as the original server
    assets: tuple[AssetLine, ...]


class PortfolioValuation(msgspec.Struct, frozen=True, kw_only=True):
    cash: Decimal
    reserved_cash: Decimal
    buying_power: Decimal
    market_value: Decimal
    equity: Decimal  # cash + market value
    total_invested: Decimal
    total_pnl: Decimal
    total_pnl_percentage: Decimal
    positions: tuple[PositionValuation, ...]
    categories: tuple[CategoryAggregation, ...]
    all_priced: bool
    as_of: datetime


def _ratio(part: Decimal, whole: Decimal) -> Decimal:
    return part / whole if whole else ZERO


def _priced(position: Position, quote: Quote | None) -> bool:
    """Whether the quote gives the position a price (else it is valued at cost)."""
    return quote is not None and quote.symbol == position.symbol and quote.last > 0


def value_position(
    position: Position, category: Category, quote: Quote | None
) -> PositionValuation:
    """Value one position at the quote's last price (or at cost when unpriced)."""
    priced = _priced(position, quote)
    cost = position.cost_basis
    lastday = change = intraday = None
    if quote is not None and priced:
        price = quote.last
        if quote.prev_close > 0:
            lastday = quote.prev_close
            change = _ratio(price - lastday, lastday)
            intraday = position.qty * (price - lastday)
    else:
        price = position.avg_entry_price
    value = position.qty * price
    return PositionValuation(
        symbol=position.symbol,
        category=category,
        qty=position.qty,
        qty_available=position.qty_available,
        avg_entry_price=position.avg_entry_price,
        cost_basis=cost,
        current_price=price,
        market_value=value,
        unrealized_pl=value - cost,
        unrealized_plpc=_ratio(value - cost, cost),
        lastday_price=lastday,
        change_today=change,
        unrealized_intraday_pl=intraday,
        priced=priced,
    )


def aggregate_by_category(
    valuations: Iterable[PositionValuation],
) -> tuple[CategoryAggregation, ...]:
    """Group valued positions by category (in Category order; empty categories left out)."""
    groups: dict[Category, list[PositionValuation]] = {}
    for v in valuations:
        groups.setdefault(v.category, []).append(v)
    result = []
    for category in Category:
        members = groups.get(category)
        if not members:
            continue
        invested = sum((v.cost_basis for v in members), ZERO)
        current = sum((v.market_value for v in members), ZERO)
        result.append(
            CategoryAggregation(
                category=category,
                total_invested=invested,
                current_total=current,
                pnl=current - invested,
                pnl_percentage=_ratio(current - invested, invested) * 100,
                assets=tuple(
                    AssetLine(
                        symbol=v.symbol,
                        quantity=v.qty,
                        average_price=v.avg_entry_price,
                        current_price=v.current_price,
                        category=category,
                    )
                    for v in members
                ),
            )
        )
    return tuple(result)


def value_positions(
    positions: Iterable[Position],
    categories: Mapping[str, Category],
    quotes: Mapping[str, Quote],
) -> tuple[PositionValuation, ...]:
    """Value the open positions (flat ones are left out), sorted by symbol.

    ``categories`` maps symbol to category; a symbol missing from it counts as a stock.
    """
    return tuple(
        value_position(p, categories.get(p.symbol, Category.STOCK), quotes.get(p.symbol))
        for p in sorted(positions, key=lambda p: p.symbol)
        if p.qty > 0
    )


def market_value(positions: Iterable[Position], quotes: Mapping[str, Quote]) -> Decimal:
    """What ``value_portfolio`` reports as market_value, without valuing each position in full
    (the account's equity needs only this)."""
    total = ZERO
    # Summed in the same order as value_portfolio: Decimal addition rounds past 28 digits.
    for p in sorted(positions, key=lambda p: p.symbol):
        if p.qty > 0:
            quote = quotes.get(p.symbol)
            price = quote.last if quote is not None and _priced(p, quote) else p.avg_entry_price
            total += p.qty * price
    return total


def value_portfolio(
    account: Account,
    positions: Iterable[Position],
    categories: Mapping[str, Category],
    quotes: Mapping[str, Quote],
    as_of: datetime,
) -> PortfolioValuation:
    """Value the account and its open positions (flat ones are left out), sorted by symbol.

    ``categories`` maps symbol to category; a symbol missing from it counts as a stock.
    """
    valued = value_positions(positions, categories, quotes)
    market_value = sum((v.market_value for v in valued), ZERO)
    invested = sum((v.cost_basis for v in valued), ZERO)
    return PortfolioValuation(
        cash=account.cash,
        reserved_cash=account.reserved_cash,
        buying_power=account.buying_power,
        market_value=market_value,
        equity=account.cash + market_value,
        total_invested=invested,
        total_pnl=market_value - invested,
        total_pnl_percentage=_ratio(market_value - invested, invested) * 100,
        positions=valued,
        categories=aggregate_by_category(valued),
        all_priced=all(v.priced for v in valued),
        as_of=as_of,
    )


def round_money(amount: Decimal) -> Decimal:
    """Cents, banker's rounding."""
    return to_cents(amount)


def round_places(value: Decimal, places: int) -> Decimal:
    """Round to ``places`` decimal places, banker's rounding (percentages: 2, fractions: 4)."""
    # "+ 0" turns a negative zero ("-0.00", a tiny loss rounded away) into a plain zero.
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN) + 0


def _round_optional(value: Decimal | None, places: int) -> Decimal | None:
    return None if value is None else round_places(value, places)


def rounded_position(v: PositionValuation) -> PositionValuation:
    """One valued position rounded for display, as ``rounded`` rounds each of a portfolio's."""
    return replace(
        v,
        avg_entry_price=round_places(v.avg_entry_price, 4),
        cost_basis=round_money(v.cost_basis),
        market_value=round_money(v.market_value),
        unrealized_pl=round_money(v.unrealized_pl),
        unrealized_plpc=round_places(v.unrealized_plpc, 4),
        change_today=_round_optional(v.change_today, 4),
        unrealized_intraday_pl=_round_optional(v.unrealized_intraday_pl, 2),
    )


def _rounded_category(c: CategoryAggregation) -> CategoryAggregation:
    return replace(
        c,
        total_invested=round_money(c.total_invested),
        current_total=round_money(c.current_total),
        pnl=round_money(c.pnl),
        pnl_percentage=round_places(c.pnl_percentage, 2),
        assets=tuple(replace(a, average_price=round_places(a.average_price, 4)) for a in c.assets),
    )


def rounded(valuation: PortfolioValuation) -> PortfolioValuation:
    """The same valuation rounded for display, once, at the edge."""
    return replace(
        valuation,
        cash=round_money(valuation.cash),
        reserved_cash=round_money(valuation.reserved_cash),
        buying_power=round_money(valuation.buying_power),
        market_value=round_money(valuation.market_value),
        equity=round_money(valuation.equity),
        total_invested=round_money(valuation.total_invested),
        total_pnl=round_money(valuation.total_pnl),
        total_pnl_percentage=round_places(valuation.total_pnl_percentage, 2),
        positions=tuple(rounded_position(v) for v in valuation.positions),
        categories=tuple(_rounded_category(c) for c in valuation.categories),
    )
