"""Market hours and day-order expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.domain.calendar import AlwaysOpen, ExchangeHours, day_order_expired, market_clock
from hub.domain.instruments import Category
from hub.domain.orders import TimeInForce, cancel

from .factories import NOW, order

NY = ZoneInfo("America/New_York")


def ny(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NY)


def test_always_open() -> None:
    cal = AlwaysOpen()
    assert cal.is_open(Category.STOCK, NOW)
    assert cal.next_close(Category.STOCK, NOW) is None


def test_exchange_session_is_half_open() -> None:
    cal = ExchangeHours()
    assert not cal.is_open(Category.STOCK, ny(2025, 3, 4, 9, 29))
    assert cal.is_open(Category.STOCK, ny(2025, 3, 4, 9, 30))
    assert cal.is_open(Category.ETF, ny(2025, 3, 4, 15, 59))
    assert not cal.is_open(Category.STOCK, ny(2025, 3, 4, 16, 0))


def test_weekends_and_holidays_closed_crypto_always_open() -> None:
    saturday = ny(2025, 3, 8, 12)
    cal = ExchangeHours(holidays=frozenset({date(2025, 3, 5)}))
    assert not cal.is_open(Category.STOCK, saturday)
    assert cal.is_open(Category.CRYPTO, saturday)
    assert cal.next_close(Category.CRYPTO, saturday) is None
    assert not cal.is_open(Category.STOCK, ny(2025, 3, 5, 12))


def test_utc_input_uses_exchange_time_including_dst() -> None:
    cal = ExchangeHours()
    # 14:00 UTC is 09:00 EST in winter (closed) but 10:00 EDT in summer (open).
    assert not cal.is_open(Category.STOCK, datetime(2025, 1, 7, 14, 0, tzinfo=UTC))
    assert cal.is_open(Category.STOCK, datetime(2025, 7, 8, 14, 0, tzinfo=UTC))


def test_next_close() -> None:
    cal = ExchangeHours(holidays=frozenset({date(2025, 3, 10)}))
    close = ny(2025, 3, 4, 16).astimezone(UTC)
    assert cal.next_close(Category.STOCK, ny(2025, 3, 4, 8)) == close  # pre-open: today's
    assert cal.next_close(Category.STOCK, ny(2025, 3, 4, 12)) == close
    assert cal.next_close(Category.STOCK, ny(2025, 3, 4, 16)) == ny(2025, 3, 5, 16)
    # Friday evening -> Monday is a holiday -> Tuesday.
    friday = cal.next_close(Category.STOCK, ny(2025, 3, 7, 17))
    assert friday == ny(2025, 3, 11, 16)
    assert friday is not None and friday.tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ExchangeHours().is_open(Category.STOCK, datetime(2025, 3, 4, 12))
    with pytest.raises(ValueError, match="open before"):
        ExchangeHours(open=time(16), close=time(9))


def test_day_orders_expire_at_the_close() -> None:
    cal = ExchangeHours()
    day = order(tif=TimeInForce.DAY)  # created on a Tuesday at 10:00 New York time
    close = ny(2025, 3, 4, 16)
    assert not day_order_expired(day, Category.STOCK, cal, close - timedelta(seconds=1))
    assert day_order_expired(day, Category.STOCK, cal, close)
    assert not day_order_expired(order(tif=TimeInForce.GTC), Category.STOCK, cal, close)
    assert not day_order_expired(day, Category.CRYPTO, cal, close + timedelta(days=3))
    assert not day_order_expired(day, Category.STOCK, AlwaysOpen(), close + timedelta(days=3))
    done, _ = cancel(day, NOW)
    assert not day_order_expired(done, Category.STOCK, cal, close)


def test_sessions_skip_weekends_and_holidays() -> None:
    cal = ExchangeHours(holidays=frozenset({date(2025, 3, 5)}))
    found = cal.sessions(date(2025, 3, 4), date(2025, 3, 10))
    assert [s.day for s in found] == [date(2025, 3, d) for d in (4, 6, 7, 10)]
    assert found[0].open == ny(2025, 3, 4, 9, 30) and found[0].close == ny(2025, 3, 4, 16)
    assert found[0].open.tzinfo is UTC
    assert cal.sessions(date(2025, 3, 8), date(2025, 3, 9)) == []


def test_always_open_has_a_nominal_session_every_day() -> None:
    found = AlwaysOpen().sessions(date(2025, 3, 8), date(2025, 3, 9))  # a weekend
    assert [(s.day, s.open, s.close) for s in found] == [
        (date(2025, 3, d), ny(2025, 3, d, 0), ny(2025, 3, d, 23, 59)) for d in (8, 9)
    ]


def test_market_clock_always_names_the_next_open_and_close() -> None:
    cal = ExchangeHours(holidays=frozenset({date(2025, 3, 10)}))
    during = market_clock(cal, ny(2025, 3, 4, 12))
    assert during == (ny(2025, 3, 4, 12), True, ny(2025, 3, 5, 9, 30), ny(2025, 3, 4, 16))
    weekend = market_clock(cal, ny(2025, 3, 8, 12))  # Monday is a holiday
    assert weekend == (ny(2025, 3, 8, 12), False, ny(2025, 3, 11, 9, 30), ny(2025, 3, 11, 16))
    always = market_clock(AlwaysOpen(), ny(2025, 3, 8, 12))
    assert always == (ny(2025, 3, 8, 12), True, ny(2025, 3, 9, 0), ny(2025, 3, 8, 23, 59))


def test_market_clock_refuses_a_calendar_without_sessions() -> None:
    every_day = frozenset(date(2025, 3, 1) + timedelta(days=n) for n in range(30))
    with pytest.raises(ValueError, match="no session"):
        market_clock(ExchangeHours(holidays=every_day), ny(2025, 3, 4, 12))
