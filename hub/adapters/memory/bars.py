"""Bars in process memory: per (symbol, timeframe), bucket starts kept sorted for range reads."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import datetime

from hub.domain.bars import Bar, Timeframe, merge


class _Series:
    __slots__ = ("bars", "starts")

    def __init__(self) -> None:
        self.starts: list[datetime] = []  # sorted
        self.bars: dict[datetime, Bar] = {}

    def put(self, bar: Bar) -> None:
        if bar.t not in self.bars:
            # The feed appends at the end; insort costs O(n) only for a backfill out of order.
            if self.starts and bar.t < self.starts[-1]:
                bisect.insort(self.starts, bar.t)
            else:
                self.starts.append(bar.t)
        self.bars[bar.t] = bar


class MemoryBars:
    def __init__(self) -> None:
        self._series: dict[tuple[str, Timeframe], _Series] = {}

    def _of(self, bar: Bar) -> _Series:
        key = (bar.symbol, bar.timeframe)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        return series

    async def upsert(self, bars: Iterable[Bar]) -> None:
        for bar in bars:
            series = self._of(bar)
            series.put(merge(series.bars.get(bar.t), bar))

    async def insert_missing(self, bars: Iterable[Bar]) -> int:
        inserted = 0
        for bar in bars:
            series = self._of(bar)
            if bar.t not in series.bars:
                series.put(bar)
                inserted += 1
        return inserted

    async def query(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int,
    ) -> list[Bar]:
        series = self._series.get((symbol, timeframe))
        if series is None or limit <= 0:
            return []
        starts = series.starts
        lo = 0 if start is None else bisect.bisect_left(starts, start)
        hi = len(starts) if end is None else bisect.bisect_right(starts, end)
        picked = (
            starts[lo : min(hi, lo + limit)]
            if start is not None
            else starts[max(lo, hi - limit) : hi]
        )
        return [series.bars[t] for t in picked]

    async def latest(self, symbols: Iterable[str]) -> list[Bar]:
        found: list[Bar] = []
        for symbol in symbols:
            for timeframe in Timeframe:
                series = self._series.get((symbol, timeframe))
                if series is not None and series.starts:
                    found.append(series.bars[series.starts[-1]])
        return found

    async def prune(self, before: Mapping[Timeframe, datetime]) -> int:
        deleted = 0
        for (_, timeframe), series in self._series.items():
            cutoff = before.get(timeframe)
            if cutoff is None:
                continue
            cut = bisect.bisect_left(series.starts, cutoff)
            for t in series.starts[:cut]:
                del series.bars[t]
            del series.starts[:cut]
            deleted += cut
        return deleted
