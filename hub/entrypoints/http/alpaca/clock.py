"""GET /v2/clock and /v2/calendar: the stock market's hours (stocks and ETFs; crypto never
closes). Calendar days carry open and close as HH:MM in the exchange's time zone, as Alpaca's.

With HUB_MARKET_HOURS=always (the default) the market never closes; the clock still names a
next open and a next close, which are the nominal day boundaries (00:00 and 23:59 New York time)
that the calendar lists for every day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from hub.domain.calendar import Session
from hub.entrypoints.http.alpaca import params
from hub.entrypoints.http.alpaca.routing import route
from hub.entrypoints.http.routing import Call

EXCHANGE_TZ = ZoneInfo("America/New_York")


class ClockOut(msgspec.Struct):
    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


class CalendarDay(msgspec.Struct):
    date: date
    open: str  # HH:MM, exchange time
    close: str
    session_open: str  # HHMM: regular hours only, as there is no extended session
    session_close: str

    @classmethod
    def of(cls, s: Session) -> CalendarDay:
        opens, closes = s.open.astimezone(EXCHANGE_TZ), s.close.astimezone(EXCHANGE_TZ)
        return cls(
            s.day,
            opens.strftime("%H:%M"),
            closes.strftime("%H:%M"),
            opens.strftime("%H%M"),
            closes.strftime("%H%M"),
        )


def _local(at: datetime) -> datetime:
    return at.astimezone(EXCHANGE_TZ)


async def get_clock(call: Call) -> ClockOut:
    clock = call.hub.market_hours.clock()
    return ClockOut(
        _local(clock.at), clock.is_open, _local(clock.next_open), _local(clock.next_close)
    )


async def get_calendar(call: Call) -> list[CalendarDay]:
    """Without `start` and `end`: from 30 days ago to a year ahead (Alpaca sends 1970-2029)."""
    query = dict(call.request.query_params)
    today = call.hub.market_hours.today()
    end = params.day(query, "end")
    start = params.day(query, "start") or min(today - timedelta(days=30), end or today)
    end = end or start + timedelta(days=395)
    return [CalendarDay.of(s) for s in call.hub.market_hours.sessions(start, end)]


ROUTES = [
    route("GET", "/v2/clock", get_clock),
    route("GET", "/v2/calendar", get_calendar),
]
