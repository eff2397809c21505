"""Market hours: when each category trades, and when a day order's day ends.

Crypto trades around the clock everywhere. ``AlwaysOpen`` is the embedded default (the simulated
feed never sleeps, so day orders never expire there); ``ExchangeHours`` models a regular-hours
exchange session on weekdays, minus the holidays it is given (no holiday table is built in).
All datetimes must be timezone-aware; results are in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from hub.domain.instruments import Category
from hub.domain.orders import Order, TimeInForce


class Session(NamedTuple):
    """One day's regular session of the stock market (stocks and ETFs), in UTC."""

    day: date  # in the exchange's time zone
    open: datetime
    close: datetime


class MarketCalendar(Protocol):
    def is_open(self, category: Category, at: datetime) -> bool:
        """Whether instruments of this category trade at ``at``."""
        ...

    def next_close(self, category: Category, at: datetime) -> datetime | None:
        """The end of the session in progress at ``at``, or else of the next one; None when the
        category never closes."""
        ...

    def sessions(self, start: date, end: date) -> list[Session]:
        """The stock market's sessions of the days from ``start`` to ``end`` inclusive."""
        ...


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, not {at!r}")
    return at


class AlwaysOpen:
    """Every category trades all the time. For calendars and clocks that need sessions, each
    day of ``tz`` counts as one session from 00:00 to 23:59 (nominal: nothing closes)."""

    def __init__(self, tz: str = "America/New_York") -> None:
        self.tz = ZoneInfo(tz)

    def is_open(self, category: Category, at: datetime) -> bool:
        _aware(at)
        return True

    def next_close(self, category: Category, at: datetime) -> datetime | None:
        _aware(at)
        return None

    def sessions(self, start: date, end: date) -> list[Session]:
        return [_session(day, time(0, 0), time(23, 59), self.tz) for day in _days(start, end)]


class ExchangeHours:
    """A daily session [open, close) in the exchange's time zone, Monday to Friday."""

    def __init__(
        self,
        *,
        open: time = time(9, 30),
        close: time = time(16, 0),
        tz: str = "America/New_York",
        holidays: frozenset[date] = frozenset(),
    ) -> None:
        if not open < close:
            raise ValueError(f"the session must open before it closes: {open} >= {close}")
        self.open = open
        self.close = close
        self.tz = ZoneInfo(tz)
        self.holidays = holidays

    def _trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def is_open(self, category: Category, at: datetime) -> bool:
        local = _aware(at).astimezone(self.tz)
        if category is Category.CRYPTO:
            return True
        return self._trading_day(local.date()) and self.open <= local.time() < self.close

    def next_close(self, category: Category, at: datetime) -> datetime | None:
        local = _aware(at).astimezone(self.tz)
        if category is Category.CRYPTO:
            return None
        day = local.date()
        if not (self._trading_day(day) and local.time() < self.close):
            day += timedelta(days=1)
        # A week of weekends plus every holiday bounds the search.
        for _ in range(7 + len(self.holidays)):
            if self._trading_day(day):
                return datetime.combine(day, self.close, tzinfo=self.tz).astimezone(UTC)
            day += timedelta(days=1)
        return None

    def sessions(self, start: date, end: date) -> list[Session]:
        return [
            _session(day, self.open, self.close, self.tz)
            for day in _days(start, end)
            if self._trading_day(day)
        ]


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _session(day: date, opens: time, closes: time, tz: ZoneInfo) -> Session:
    return Session(
        day,
        datetime.combine(day, opens, tzinfo=tz).astimezone(UTC),
        datetime.combine(day, closes, tzinfo=tz).astimezone(UTC),
    )


class MarketClock(NamedTuple):
    """The stock market now, as a brokerage clock shows it: never without a next open and a
    next close (an always-open calendar's are its nominal day boundaries)."""

    at: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


# Two weeks of days bound the search for the next session: weekends and a holiday or two.
_CLOCK_HORIZON = timedelta(days=14)


def market_clock(calendar: MarketCalendar, at: datetime) -> MarketClock:
    """The clock of the stock market (stocks and ETFs) at ``at``. Raises ValueError when no
    session opens within two weeks (a calendar made of holidays)."""
    day = _aware(at).astimezone(UTC).date()
    found = calendar.sessions(day - timedelta(days=1), day + _CLOCK_HORIZON)
    next_open = next((s.open for s in found if s.open > at), None)
    next_close = next((s.close for s in found if s.close > at), None)
    if next_open is None or next_close is None:
        raise ValueError(f"no session within {_CLOCK_HORIZON.days} days of {at}")
    return MarketClock(at, calendar.is_open(Category.STOCK, at), next_open, next_close)


def day_order_expired(
    order: Order, category: Category, calendar: MarketCalendar, now: datetime
) -> bool:
    """Whether a day order's session has closed since it was created (other orders never expire
    by time here; ioc/fok end at their first match)."""
    if order.time_in_force is not TimeInForce.DAY or order.is_terminal:
        return False
    close = calendar.next_close(category, order.created_at)
    return close is not None and _aware(now) >= close
