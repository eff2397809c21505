"""Building one symbol's bars, in several timeframes at once, from its trades as they arrive.

The builder holds the forming bar of each timeframe. Each trade extends it, or closes it and
opens the next one when the trade falls in a later bucket. Trades come in time order: trades at
one instant all count, and one older than what a bar already holds is skipped as late.

After a restart the builder resumes from the bars the store holds (`resume`), and the minute in
progress continues where it was written. From then on a trade at or before a stored bar's
`as_of` counts as already in it (a source may replay what it last sent), and the store keeps the
snapshot further along (`hub.domain.bars.merge`), so nothing stored is lost or counted twice,
provided one symbol's trades have distinct times (the simulator's do). A crash loses what was
applied but not yet written: the feed's write interval bounds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

from hub.domain.bars import Bar, Timeframe, Trade, extend, merge, open_bar

_INSTANT = timedelta(microseconds=1)


class BarUpdate(msgspec.Struct, frozen=True):
    """What one trade changed: the forming bars it is now part of, and the bars it closed
    (those will not change again)."""

    forming: tuple[Bar, ...]
    closed: tuple[Bar, ...]


class BarBuilder:
    """The bars of one symbol, in each of `timeframes`, from its trades in time order."""

    def __init__(self, symbol: str, timeframes: Iterable[Timeframe] = tuple(Timeframe)) -> None:
        self.symbol = symbol
        self._forming: dict[Timeframe, Bar | None] = dict.fromkeys(timeframes)
        if not self._forming:
            raise ValueError("a bar builder needs at least one timeframe")
        # Per timeframe, the earliest time a trade may have: the forming bar's as_of, or the end
        # of the bucket a timer closed. Before it, a trade is already counted or too late.
        self._floor: dict[Timeframe, datetime | None] = dict.fromkeys(self._forming)
        self._end: dict[Timeframe, datetime | None] = dict.fromkeys(self._forming)

    @property
    def timeframes(self) -> tuple[Timeframe, ...]:
        return tuple(self._forming)

    def forming(self) -> list[Bar]:
        """The bar forming in each timeframe (none before the first trade, or after `roll`)."""
        return [bar for bar in self._forming.values() if bar is not None]

    def resume(self, stored: Iterable[Bar]) -> None:
        """Continue from the latest stored bar of each timeframe, as a restarted feed does.
        A stored bar whose bucket has ended is closed by the next trade, and writing it again
        changes nothing; bars of other symbols or timeframes are ignored."""
        for bar in stored:
            if bar.symbol != self.symbol or bar.timeframe not in self._forming:
                continue
            current = self._forming[bar.timeframe]
            if current is None or bar.t > current.t:
                self._set(bar)
            elif bar.t == current.t:
                self._set(merge(current, bar))
            else:
                continue
            # A trade at the stored as_of itself was counted before the restart, if the source
            # replays it: from a resume on, only later trades count (datetimes tick in 1 us).
            self._floor[bar.timeframe] = bar.as_of + _INSTANT

    def apply(self, trade: Trade) -> BarUpdate:
        """Fold a trade (or a price without one, size 0) into every timeframe."""
        if trade.at.utcoffset() is None:
            raise ValueError(f"a timezone-aware datetime is required, not {trade.at!r}")
        forming: list[Bar] = []
        closed: list[Bar] = []
        for timeframe, bar in self._forming.items():
            floor = self._floor[timeframe]
            if floor is not None and trade.at < floor:
                continue
            end = self._end[timeframe]
            if bar is not None and end is not None and trade.at < end:
                bar = extend(bar, trade)
                self._forming[timeframe] = bar
                self._floor[timeframe] = trade.at
            else:
                if bar is not None:
                    closed.append(bar)
                bar = open_bar(self.symbol, timeframe, trade)
                self._set(bar)
            forming.append(bar)
        return BarUpdate(tuple(forming), tuple(closed))

    def roll(self, now: datetime) -> list[Bar]:
        """Close the bars whose bucket has ended by `now` (a timer calls this, so that a quiet
        symbol's minute closes on time); trades before their end are skipped from now on."""
        closed: list[Bar] = []
        for timeframe, bar in self._forming.items():
            end = self._end[timeframe]
            if bar is not None and end is not None and end <= now:
                closed.append(bar)
                self._forming[timeframe] = None
                self._floor[timeframe] = end
        return closed

    def _set(self, bar: Bar) -> None:
        self._forming[bar.timeframe] = bar
        self._floor[bar.timeframe] = bar.as_of
        self._end[bar.timeframe] = bar.end
