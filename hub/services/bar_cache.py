"""The most recent bars of a (symbol, timeframe, limit), held in process memory for a second.

"The last N bars" is what every chart asks first and what changes all the time: the feed
rewrites each forming bar once a second, so no answer stays right for longer than that, and
every API node would otherwise read the store (PostgreSQL in services mode) on every request.
So each node keeps the answer it read for `ttl_s` (by default the feed's write interval): a
hit is a dict lookup, a cache adds at most `ttl_s` of staleness to what the store holds, and
the store sees at most one read per key and interval however many clients ask. A closed bar
never changes, so staleness only ever concerns the newest bar or two, which the live
`bars:<SYMBOL>` channel brings up to date.

An expired answer is refreshed, not read again: only its last two bars and what came after
them are read (a closed bar never changes, and every bar before the newest one held was final
when the store had the newest), so a refresh decodes a few rows instead of `limit`; measured
in benchmarks/README.md ("Price history"). A refresh that finds more than `limit` bars (the
answer is far behind) reads the whole answer again.

Concurrent misses of one key share one read (single flight), so an expiry under load costs one
query, not one per waiting request. Memory is bounded by the number of bars held, not of keys:
expired answers are kept (to be refreshed) until the bound needs their room.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from hub.domain.bars import Bar, Timeframe


@dataclass(frozen=True, slots=True, eq=False)
class BarSeries:
    """Bars of one symbol and timeframe, ascending: what the bars query answers. A cached
    series is shared by every request it serves (the edges may memoize its encoding by
    identity): never mutate it."""

    symbol: str
    timeframe: Timeframe
    bars: tuple[Bar, ...]


Key = tuple[str, Timeframe, int]
# (symbol, timeframe, limit, since): without `since` the most recent `limit` bars; with it the
# first `limit` bars from `since` on. Both ascending.
Loader = Callable[[str, Timeframe, int, datetime | None], Awaitable[list[Bar]]]


@dataclass
class RecentBarStats:
    hits: int = 0
    misses: int = 0
    refreshes: int = 0  # of the misses, those that read only the tail of an expired answer
    shared: int = 0  # misses that waited for another request's read


class RecentBars:
    def __init__(
        self,
        load: Loader,
        *,
        ttl_s: float = 1.0,
        max_bars: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl_s
        self._max_bars = max_bars
        self._clock = clock
        # key -> (expiry on `clock`, series), oldest first (an entry is re-inserted on refill)
        self._entries: dict[Key, tuple[float, BarSeries]] = {}
        self._held = 0  # bars in _entries
        self._loading: dict[Key, asyncio.Task[BarSeries]] = {}
        self.counts = RecentBarStats()

    async def get(self, symbol: str, timeframe: Timeframe, limit: int) -> BarSeries:
        """The most recent `limit` bars, from memory when read less than `ttl_s` ago."""
        key = (symbol, timeframe, limit)
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            self.counts.hits += 1
            return entry[1]
        task = self._loading.get(key)
        if task is None:
            self.counts.misses += 1
            task = asyncio.ensure_future(self._fill(key, entry[1] if entry else None))
            self._loading[key] = task
            task.add_done_callback(lambda done: self._done_loading(key, done))
        else:
            self.counts.shared += 1
        # Shielded: a client that goes away does not cancel the read the others wait for.
        return await asyncio.shield(task)

    def forget(self, symbols: Iterable[str]) -> None:
        """Drop what is held for these symbols (an admin's cache invalidation)."""
        gone = set(symbols)
        for key in [k for k in self._entries if k[0] in gone]:
            self._held -= len(self._entries.pop(key)[1].bars)

    async def _fill(self, key: Key, stale: BarSeries | None) -> BarSeries:
        # The clock is read before the query: an answer is never held past ttl_s from the
        # moment its read began.
        expires = self._clock() + self._ttl
        symbol, timeframe, limit = key
        bars: list[Bar] | None = None
        if stale is not None and len(stale.bars) >= 2:
            since = stale.bars[-2].t
            tail = await self._load(symbol, timeframe, limit + 1, since)
            if len(tail) <= limit:  # else more came since than one answer holds: read it all
                self.counts.refreshes += 1
                bars = [b for b in stale.bars if b.t < since] + tail
        if bars is None:
            bars = await self._load(symbol, timeframe, limit, None)
        series = BarSeries(symbol, timeframe, tuple(bars[-limit:]))
        self._put(key, expires, series)
        return series

    def _done_loading(self, key: Key, task: asyncio.Task[BarSeries]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]

    def _put(self, key: Key, expires: float, series: BarSeries) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._held -= len(old[1].bars)
        if len(series.bars) > self._max_bars:
            return
        self._entries[key] = (expires, series)
        self._held += len(series.bars)
        # Least recently filled first, as far as the bound needs (expired answers stay: the
        # next request refreshes them for the price of a few rows).
        while self._held > self._max_bars:
            self._held -= len(self._entries.pop(next(iter(self._entries)))[1].bars)
