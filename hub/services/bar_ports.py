"""The port of price history: bars written by the feed (the only writer), read by market data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from hub.domain.bars import Bar, Timeframe


class BarStore(Protocol):
    """Bars by (symbol, timeframe, t): 1Min, 5Min, 15Min, 1Hour and 1Day each stored as their
    own bars (a long timeframe is never computed from minutes at read time)."""

    async def upsert(self, bars: Iterable[Bar]) -> None:
        """Write forming or closed bars, in one round trip. Each is a whole snapshot of its
        bucket so far; what is kept per bar is `hub.domain.bars.merge`: the snapshot further
        along, so writing one twice, or an older one late, changes nothing."""

    async def insert_missing(self, bars: Iterable[Bar]) -> int:
        """Backfill: insert the bars whose (symbol, timeframe, t) is absent, never changing a
        stored one (of two with one key in `bars`, the first counts). Return how many were
        inserted; running it again inserts none."""

    async def query(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int,
    ) -> list[Bar]:
        """Bars with start <= t <= end (both inclusive, as Alpaca's), in ascending time order.
        With a start: the first `limit` of them. Without: the most recent `limit` (up to `end`
        when given)."""

    async def latest(self, symbols: Iterable[str]) -> list[Bar]:
        """The most recent bar of every timeframe for each symbol: what a feed resumes its
        builders from after a restart (`BarBuilder.resume`)."""

    async def prune(self, before: Mapping[Timeframe, datetime]) -> int:
        """Delete the bars of each listed timeframe whose t is before its cutoff (see
        `Retention.cutoffs`); return how many went."""
