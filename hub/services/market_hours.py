"""When the stock market trades: the clock now, and the sessions of a range of days."""

from __future__ import annotations

from datetime import date, timedelta

from hub.domain.calendar import MarketCalendar, MarketClock, Session, market_clock
from hub.domain.errors import InvalidInput
from hub.services.ports import Clock

MAX_CALENDAR_DAYS = 3 * 366  # one request's range of days


class MarketHoursService:
    def __init__(self, calendar: MarketCalendar, clock: Clock) -> None:
        self._calendar = calendar
        self._clock = clock

    def today(self) -> date:
        return self._clock.now().date()

    def clock(self) -> MarketClock:
        return market_clock(self._calendar, self._clock.now())

    def sessions(self, start: date, end: date) -> list[Session]:
        """The sessions from `start` to `end` inclusive; InvalidInput for a reversed range or
        one longer than MAX_CALENDAR_DAYS."""
        if end < start:
            raise InvalidInput("end must not be before start", field="end")
        if end - start > timedelta(days=MAX_CALENDAR_DAYS):
            raise InvalidInput(f"at most {MAX_CALENDAR_DAYS} days per request", field="end")
        return self._calendar.sessions(start, end)
