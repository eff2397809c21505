"""Instruments, quotes and bars for clients: instrument details through two cache layers over
the repository (this process's memory, then the shared cache), latest quotes from the quote
store, bars from the bar store (the most recent ones through services/bar_cache.py).

Instruments change only through an admin, so each process keeps what it read for
`local_ttl_s`; an admin write clears this process's copy at once and the others' within that
time. The hot paths (order submit, market data, the instrument list) then make no round trip
for them."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import structlog

from hub.domain.bars import Bar, Timeframe
from hub.domain.errors import DependencyUnavailable, InvalidInput, NotFound
from hub.domain.instruments import Instrument
from hub.domain.quotes import Quote
from hub.services.bar_cache import BarSeries, RecentBars
from hub.services.bar_ports import BarStore
from hub.services.ports import InstrumentCache, InstrumentRepository, QuoteStore

log = structlog.get_logger("hub.market_data")

MAX_SYMBOLS = 100
MAX_LISTING = 500  # the most instruments one GET /instruments may ask for
DEFAULT_BARS = 100
MAX_BARS = 10_000  # the most bars one query answers (a year of minutes is 98,000)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class MarketData:
    instrument: Instrument
    quote: Quote | None


def parse_symbols(raw: str | Iterable[str] | None) -> list[str]:
    """Upper-cased, de-duplicated symbols in request order; InvalidInput when none or too many."""
    items = raw.split(",") if isinstance(raw, str) else list(raw or [])
    symbols = list(dict.fromkeys(s.strip().upper() for s in items if s.strip()))
    if not symbols:
        raise InvalidInput("symbols is required, e.g. symbols=AAPL,MSFT", field="symbols")
    if len(symbols) > MAX_SYMBOLS:
        raise InvalidInput(f"at most {MAX_SYMBOLS} symbols per request", field="symbols")
    bad = [s for s in symbols if len(s) > 15 or not s.replace("-", "").replace(".", "").isalnum()]
    if bad:
        raise InvalidInput(f"not a symbol: {bad[0]!r}", field="symbols")
    return symbols


def parse_symbol(raw: str) -> str:
    """One symbol (a path segment): upper-cased; InvalidInput for anything else."""
    symbols = parse_symbols(raw)
    if len(symbols) != 1 or "," in raw:
        raise InvalidInput("one symbol is expected, e.g. AAPL", field="symbol")
    return symbols[0]


class MarketDataService:
    def __init__(
        self,
        instruments: InstrumentRepository,
        cache: InstrumentCache | None,
        quotes: QuoteStore,
        *,
        bars: BarStore | None = None,
        local_ttl_s: float = 30.0,
        bars_ttl_s: float = 1.0,
    ) -> None:
        self._instruments = instruments
        self._cache = cache
        self._quotes = quotes
        self._bars = bars
        self._recent = RecentBars(self._recent_bars, ttl_s=bars_ttl_s)
        self._local_ttl = local_ttl_s
        self._local: dict[str, tuple[float, Instrument]] = {}
        # The first MAX_LISTING instruments by symbol (what a search without a query answers),
        # held and cleared like the by-symbol copies: (expiry on the monotonic clock, list).
        self._listing: tuple[float, list[Instrument]] | None = None
        self.cache_stats = CacheStats()

    def stats(self) -> dict[str, int]:
        """The caches' counters (exported as the `market_data_cache` group)."""
        recent = {f"bars_{name}": n for name, n in vars(self._recent.counts).items()}
        return vars(self.cache_stats) | recent

    async def search(self, query: str | None, limit: int = 50) -> list[Instrument]:
        """Without a query (the instrument list), the first `limit` by symbol from this
        process's copy; a search asks the repository."""
        if (query and query.strip()) or limit > MAX_LISTING:
            return await self._instruments.search(query, limit)
        now = time.monotonic()
        if self._listing is None or self._listing[0] <= now:
            listing = await self._instruments.search(None, MAX_LISTING)
            self._listing = (now + self._local_ttl, listing)
        return self._listing[1][:limit]

    async def instruments(self, symbols: list[str]) -> dict[str, Instrument]:
        """Cache-aside: this process's copy, then the shared cache, then the repository (filling
        the caches). A cache that fails is skipped (logged, counted): the answer comes from the
        repository."""
        now = time.monotonic()
        found: dict[str, Instrument] = {}
        for symbol in symbols:
            held = self._local.get(symbol)
            if held is not None and held[0] > now:
                found[symbol] = held[1]
        if len(found) == len(symbols):
            self.cache_stats.hits += len(found)
            return found
        shared: dict[str, Instrument] = {}
        if self._cache is not None:
            try:
                shared = await self._cache.get_many([s for s in symbols if s not in found])
            except DependencyUnavailable as exc:
                self._cache_failed("read", exc)
        found.update(shared)
        self.cache_stats.hits += len(found)
        missing = [s for s in symbols if s not in found]
        self._hold(shared.values(), now)
        if missing:
            self.cache_stats.misses += len(missing)
            loaded = await self._instruments.get_many(missing)
            found.update(loaded)
            self._hold(loaded.values(), now)
            if self._cache is not None and loaded:
                try:
                    await self._cache.set_many(loaded.values())
                except DependencyUnavailable as exc:
                    self._cache_failed("fill", exc)
        return found

    async def instrument(self, symbol: str) -> Instrument:
        found = await self.instruments([symbol])
        if symbol not in found:
            raise NotFound(f"unknown symbol {symbol}")
        return found[symbol]

    async def market_data(self, symbols: list[str]) -> list[MarketData]:
        """Known symbols in request order; unknown ones are left out (the caller compares)."""
        instruments = await self.instruments(symbols)
        quotes = await self._quotes.get_many(instruments)
        return [MarketData(instruments[s], quotes.get(s)) for s in symbols if s in instruments]

    async def quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        return await self._quotes.get_many(symbols)

    async def bars(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = DEFAULT_BARS,
    ) -> BarSeries:
        """Bars with start <= t <= end, ascending: the first `limit` from `start`, or without
        one the most recent `limit` (up to `end`). InvalidInput for a limit outside 1 to
        MAX_BARS or start after end, NotFound for an unknown symbol. The most recent bars
        (no start, no end) come from this process's cache, at most `bars_ttl_s` old."""
        if not 1 <= limit <= MAX_BARS:
            raise InvalidInput(f"limit must be a whole number from 1 to {MAX_BARS}", field="limit")
        for name, at in (("start", start), ("end", end)):
            if at is not None and at.utcoffset() is None:
                raise InvalidInput(f"{name} must carry a time zone", field=name)
        if start is not None and end is not None and start > end:
            raise InvalidInput("start must not be after end", field="start")
        await self.instrument(symbol)
        if start is None and end is None:
            return await self._recent.get(symbol, timeframe, limit)
        found = await self._bar_store().query(symbol, timeframe, start=start, end=end, limit=limit)
        return BarSeries(symbol, timeframe, tuple(found))

    async def _recent_bars(
        self, symbol: str, timeframe: Timeframe, limit: int, since: datetime | None
    ) -> list[Bar]:
        return await self._bar_store().query(symbol, timeframe, start=since, limit=limit)

    def _bar_store(self) -> BarStore:
        if self._bars is None:
            raise DependencyUnavailable("this process has no bar store")
        return self._bars

    def _hold(self, instruments: Iterable[Instrument], now: float) -> None:
        for instrument in instruments:
            self._local[instrument.symbol] = (now + self._local_ttl, instrument)

    async def invalidate(self, symbols: list[str]) -> int:
        self._listing = None
        self._recent.forget(symbols)
        for symbol in symbols:
            self._local.pop(symbol, None)
        if self._cache is None:
            return 0
        return await self._cache.delete_many(symbols)

    async def warm(self, symbols: list[str]) -> int:
        self._listing = None
        for symbol in symbols:
            self._local.pop(symbol, None)
        loaded = await self._instruments.get_many(symbols)
        if self._cache is not None and loaded:
            await self._cache.set_many(loaded.values())
        return len(loaded)

    def _cache_failed(self, what: str, exc: Exception) -> None:
        self.cache_stats.errors += 1
        log.warning("instrument cache unavailable, using the database", op=what, error=str(exc))
