"""Price bars (OHLCV candles): the timeframes, the bucket a time falls in, what a store keeps when
a bar is written twice, rolling short bars up into long ones, and how long each is kept.

The fields are Alpaca's (t, o, h, l, c, v, n, vw). Minute and hour buckets start on UTC
boundaries; a day is a New York calendar date, its bar stamped at that date's midnight in New
York (expressed in UTC), as Alpaca stamps daily bars. Prices stay Decimal and on the tick: a bar
only ever picks prices it was given, and `vw` is derived from the exact notional sum.
Building bars from trades is `hub.domain.bar_builder`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from zoneinfo import ZoneInfo

import msgspec

from hub.domain.errors import InvalidInput

NEW_YORK = ZoneInfo("America/New_York")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Timeframe(enum.StrEnum):
    """A bar's length; the values are the wire names."""

    MINUTE = "1Min"
    FIVE_MINUTES = "5Min"
    FIFTEEN_MINUTES = "15Min"
    HOUR = "1Hour"
    DAY = "1Day"

    def bucket(self, at: datetime) -> datetime:
        """The start of the bucket `at` falls in, in UTC."""
        if at.utcoffset() is None:
            raise ValueError(f"a timezone-aware datetime is required, not {at!r}")
        if self is Timeframe.DAY:
            day = at.astimezone(NEW_YORK).date()
            return datetime(day.year, day.month, day.day, tzinfo=NEW_YORK).astimezone(UTC)
        delta = at - _EPOCH
        seconds = delta.days * 86_400 + delta.seconds
        return _EPOCH + timedelta(seconds=seconds - seconds % _SECONDS[self])

    def next_bucket(self, start: datetime) -> datetime:
        """The start of the bucket after the one that starts at `start`: this one's end."""
        if self is Timeframe.DAY:
            day = start.astimezone(NEW_YORK).date() + timedelta(days=1)
            return datetime(day.year, day.month, day.day, tzinfo=NEW_YORK).astimezone(UTC)
        return start + _LENGTH[self]


_LENGTH = {
    Timeframe.MINUTE: timedelta(minutes=1),
    Timeframe.FIVE_MINUTES: timedelta(minutes=5),
    Timeframe.FIFTEEN_MINUTES: timedelta(minutes=15),
    Timeframe.HOUR: timedelta(hours=1),
    Timeframe.DAY: timedelta(days=1),
}
_SECONDS = {timeframe: int(length.total_seconds()) for timeframe, length in _LENGTH.items()}


def parse_timeframe(text: str, field: str = "timeframe") -> Timeframe:
    """A timeframe by its wire name; InvalidInput (a 422 at the edge) for any other text."""
    try:
        return Timeframe(text)
    except ValueError:
        names = ", ".join(t.value for t in Timeframe)
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise InvalidInput(f"{field} must be one of {names}, not {shown!r}", field=field) from None


class Trade(msgspec.Struct, frozen=True):
    """A trade print, or (size 0) a price without a trade: the mid where the feed has none."""

    at: datetime
    price: Decimal
    size: Decimal


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    """One bucket of one symbol: open, high, low and close prices, volume and trade count.

    `notional` is the sum of price x size over the trades, so that `vw` stays exact and a
    rollup can sum it. `as_of` is the time of the latest trade or price folded in: how far the
    bar is built, which decides what a store keeps when a bar is written twice (`merge`).
    """

    symbol: str
    timeframe: Timeframe
    t: datetime  # the bucket's start, UTC
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 (the wire name)
    c: Decimal
    v: Decimal  # Decimal, not int: crypto trades in fractions of a unit
    n: int
    notional: Decimal
    as_of: datetime

    @property
    def vw(self) -> Decimal:
        """The volume-weighted average price; the close while the bar has no volume."""
        return self.notional / self.v if self.v else self.c

    @property
    def end(self) -> datetime:
        return self.timeframe.next_bucket(self.t)

    @property
    def key(self) -> tuple[str, Timeframe, datetime]:
        return self.symbol, self.timeframe, self.t


def open_bar(symbol: str, timeframe: Timeframe, trade: Trade) -> Bar:
    """A new bar holding one trade."""
    price, size = trade.price, trade.size
    return Bar(
        symbol=symbol,
        timeframe=timeframe,
        t=timeframe.bucket(trade.at),
        o=price,
        h=price,
        l=price,
        c=price,
        v=size,
        n=1 if size else 0,
        notional=price * size,
        as_of=trade.at,
    )


def extend(bar: Bar, trade: Trade) -> Bar:
    """`bar` with one more trade of its bucket, in time order."""
    price, size = trade.price, trade.size
    return Bar(
        symbol=bar.symbol,
        timeframe=bar.timeframe,
        t=bar.t,
        o=bar.o,
        h=price if price > bar.h else bar.h,
        l=price if price < bar.l else bar.l,
        c=price,
        v=bar.v + size,
        n=bar.n + 1 if size else bar.n,
        notional=bar.notional + price * size,
        as_of=trade.at,
    )


def combine(first: Bar, second: Bar) -> Bar:
    """Two consecutive stretches of trades as one bar: `first`'s bucket, open and timeframe."""
    if first.symbol != second.symbol or second.t < first.t:
        raise ValueError("combine takes bars of one symbol in ascending order")
    return Bar(
        symbol=first.symbol,
        timeframe=first.timeframe,
        t=first.t,
        o=first.o,
        h=max(first.h, second.h),
        l=min(first.l, second.l),
        c=second.c,
        v=first.v + second.v,
        n=first.n + second.n,
        notional=first.notional + second.notional,
        as_of=max(first.as_of, second.as_of),
    )


def merge(stored: Bar | None, incoming: Bar) -> Bar:
    """What a store keeps when `incoming` is written over `stored` (same symbol, timeframe, t).

    A forming bar is written again and again as it grows, each time as a whole snapshot of its
    bucket so far (a builder resumed after a restart continues the stored snapshot). So the
    snapshot further along wins, compared by (as_of, n), and a tie takes `incoming`: writing a
    snapshot twice changes nothing, and a late write of an older one cannot undo a newer one.
    Adding partial bars instead would double one that is written twice.
    """
    if stored is None:
        return incoming
    if stored.key != incoming.key:
        raise ValueError(
            f"merge takes two versions of one bar, not {stored.key} and {incoming.key}"
        )
    return incoming if (incoming.as_of, incoming.n) >= (stored.as_of, stored.n) else stored


def rollup(bars: Iterable[Bar], timeframe: Timeframe) -> list[Bar]:
    """Bars of one symbol and a shorter timeframe, ascending, rolled up into `timeframe`.

    Every shorter bucket lies inside one longer bucket (New York midnight is a whole UTC hour),
    so this equals building `timeframe` directly from the same trades.
    """
    out: list[Bar] = []
    current: Bar | None = None
    for bar in bars:
        if _SECONDS[bar.timeframe] >= _SECONDS[timeframe]:
            raise ValueError(f"cannot roll {bar.timeframe} bars up into {timeframe}")
        start = timeframe.bucket(bar.t)
        if current is not None and current.t == start:
            current = combine(current, bar)
            continue
        if current is not None:
            if start < current.t:
                raise ValueError("rollup takes bars in ascending order")
            out.append(current)
        current = msgspec.structs.replace(bar, timeframe=timeframe, t=start)
    if current is not None:
        out.append(current)
    return out


def _default_keep() -> Mapping[Timeframe, timedelta]:
    return MappingProxyType(
        {
            Timeframe.MINUTE: timedelta(days=30),
            Timeframe.FIVE_MINUTES: timedelta(days=90),
            Timeframe.FIFTEEN_MINUTES: timedelta(days=180),
            Timeframe.HOUR: timedelta(days=730),
        }
    )


@dataclass(frozen=True)
class Retention:
    """How long the bars of each timeframe are kept, by bucket start; a timeframe not listed is
    kept forever (daily bars, by default). Longer timeframes are stored as their own bars, so
    pruning minutes never loses an hour or a day."""

    keep: Mapping[Timeframe, timedelta] = field(default_factory=_default_keep)

    def __post_init__(self) -> None:
        for timeframe, keep in self.keep.items():
            if keep <= timedelta(0):
                raise ValueError(f"{timeframe} bars must be kept for a positive time, not {keep}")

    def cutoffs(self, now: datetime) -> dict[Timeframe, datetime]:
        """For each pruned timeframe, the bucket start before which its bars go."""
        return {timeframe: now - keep for timeframe, keep in self.keep.items()}
