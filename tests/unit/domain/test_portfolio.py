"""Portfolio valuation and the aggregation by category."""

from __future__ import annotations

from decimal import Decimal

from hub.domain.instruments import Category
from hub.domain.money import to_cents
from hub.domain.orders import Side
from hub.domain.portfolio import (
    market_value,
    round_money,
    round_places,
    rounded,
    rounded_position,
    value_portfolio,
    value_position,
    value_positions,
)
from hub.domain.positions import Position, apply_fill, empty_position

from .factories import ACCOUNT_ID, NOW, USER_ID, D, account, quote


def holding(symbol: str, qty: str, price: str) -> Position:
    return apply_fill(empty_position(ACCOUNT_ID, USER_ID, symbol), Side.BUY, D(qty), D(price))


def test_value_position_at_last() -> None:
    v = value_position(holding("AAPL", "10", "100"), Category.STOCK, quote(last="105.23"))
    assert v.priced and v.current_price == D("105.23")
    assert v.market_value == D("1052.30") and v.cost_basis == D("1000")
    assert v.unrealized_pl == D("52.30") and v.unrealized_plpc == D("0.0523")
    assert v.lastday_price == D("95.00")
    assert v.unrealized_intraday_pl == D("102.30")
    assert round_places(v.change_today or D(0), 4) == D("0.1077")


def test_unpriced_position_falls_back_to_cost() -> None:
    v = value_position(holding("XYZ", "3", "10"), Category.ETF, None)
    assert not v.priced
    assert v.current_price == D("10") and v.market_value == D("30") and v.unrealized_pl == 0
    assert v.change_today is None


def test_portfolio_totals_and_categories() -> None:
    positions = [
        holding("VOO", "2", "400"),
        holding("AAPL", "10", "100"),
        holding("AMZN", "1", "200"),
        empty_position(ACCOUNT_ID, USER_ID, "DIS"),  # flat: left out
    ]
    categories = {"AAPL": Category.STOCK, "AMZN": Category.STOCK, "VOO": Category.ETF}
    quotes = {"AAPL": quote("AAPL", last="110.00"), "VOO": quote("VOO", last="380.00")}
    p = value_portfolio(account("1000", reserved="100"), positions, categories, quotes, NOW)
    assert [v.symbol for v in p.positions] == ["AAPL", "AMZN", "VOO"]
    assert not p.all_priced  # AMZN has no quote
    assert p.market_value == D("1100") + D("200") + D("760")
    assert p.equity == D("1000") + p.market_value
    assert p.total_invested == D("2000")
    assert p.total_pnl == D("60")
    assert p.total_pnl_percentage == D("3")
    assert p.buying_power == D("900")
    stock, etf = p.categories
    assert stock.category is Category.STOCK and etf.category is Category.ETF
    assert stock.total_invested == D("1200") and stock.current_total == D("1300")
    assert stock.pnl == D("100") and round_places(stock.pnl_percentage, 2) == D("8.33")
    assert [a.symbol for a in stock.assets] == ["AAPL", "AMZN"]
    assert stock.assets[0].average_price == D("100") and stock.assets[0].current_price == D(
        "110.00"
    )
    assert etf.pnl == D("-40") and etf.pnl_percentage == D("-5")


def test_rounding_happens_once_at_the_edge() -> None:
    third = apply_fill(holding("AAPL", "2", "100.00"), Side.BUY, D(1), D("100.01"))
    p = value_portfolio(account("0.005"), [third], {}, {"AAPL": quote(last="100.00")}, NOW)
    assert p.positions[0].avg_entry_price != round_places(p.positions[0].avg_entry_price, 4)
    r = rounded(p)
    assert r.positions[0].avg_entry_price == D("100.0033")
    assert r.cash == D("0.00") and r.positions[0].unrealized_pl == D("-0.01")
    assert r.categories[0].assets[0].average_price == D("100.0033")
    assert r.total_pnl_percentage == D("0.00")
    assert round_money(D("1.005")) == D("1.00") and round_money(D("1.015")) == D("1.02")


def test_empty_portfolio() -> None:
    p = value_portfolio(account("5"), [], {}, {}, NOW)
    assert p.equity == D("5") and p.categories == () and p.all_priced
    assert p.total_pnl_percentage == 0


def test_the_parts_agree_with_the_whole() -> None:
    # What /positions and /account compute on their own must be what /portfolio shows.
    positions = [
        holding("VOO", "2", "400"),
        apply_fill(holding("AAPL", "2", "100.00"), Side.BUY, D(1), D("100.01")),  # avg 100.0033..
        holding("AMZN", "1", "200"),  # no quote: at cost
        holding("GLD", "3", "180.555"),  # a quote of another symbol: at cost
        holding("TSLA", "4", "250"),  # last 0: at cost
        holding("BTC-USD", "0.0123", "65000.12"),
        empty_position(ACCOUNT_ID, USER_ID, "DIS"),  # flat: left out
    ]
    categories = {"VOO": Category.ETF, "BTC-USD": Category.CRYPTO}
    quotes = {
        "AAPL": quote("AAPL", last="110.07"),
        "VOO": quote("VOO", last="380.00", prev_close="0"),
        "GLD": quote("AAPL", last="190.00"),
        "TSLA": quote("TSLA", last="0"),
        "BTC-USD": quote("BTC-USD", last="70123.4567"),
    }
    whole = value_portfolio(account("1000.125"), positions, categories, quotes, NOW)
    assert value_positions(positions, categories, quotes) == whole.positions
    assert market_value(positions, quotes) == whole.market_value
    assert market_value([], {}) == 0
    shown = rounded(whole)
    assert tuple(rounded_position(v) for v in whole.positions) == shown.positions


def test_a_loss_rounded_away_is_a_plain_zero_not_minus_zero() -> None:
    # A tiny loss rounds to zero; shown as "-0.00" the dashboard printed "+-0.00%".
    assert str(round_places(Decimal("-0.001"), 2)) == "0.00"
    assert str(to_cents(Decimal("-0.004"))) == "0.00"
    assert str(round_places(Decimal("-0.005"), 2)) == "0.00"  # half-even: to the even zero
    assert str(round_places(Decimal("-0.015"), 2)) == "-0.02"  # a real loss keeps its sign
