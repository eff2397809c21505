"""Instruments and quotes for clients: instrument details through a cache-aside over the
repository, latest quotes from the quote store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from hub.domain.errors import DependencyUnavailable, InvalidInput, NotFound
from hub.domain.instruments import Instrument
from hub.domain.quotes import Quote
from hub.services.ports import InstrumentCache, InstrumentRepository, QuoteStore

log = structlog.get_logger("hub.market_data")

MAX_SYMBOLS = 100


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


class MarketDataService:
    def __init__(
        self,
        instruments: InstrumentRepository,
        cache: InstrumentCache | None,
        quotes: QuoteStore,
    ) -> None:
        self._instruments = instruments
        self._cache = cache
        self._quotes = quotes
        self.cache_stats = CacheStats()

    async def search(self, query: str | None, limit: int = 50) -> list[Instrument]:
        return await self._instruments.search(query, limit)

    async def instruments(self, symbols: list[str]) -> dict[str, Instrument]:
        """Cache-aside: read the cache, fetch the misses from the repository, fill the cache.
        A cache that fails is skipped (logged, counted): the answer comes from the repository."""
        found: dict[str, Instrument] = {}
        if self._cache is not None:
            try:
                found = await self._cache.get_many(symbols)
            except DependencyUnavailable as exc:
                self._cache_failed("read", exc)
        self.cache_stats.hits += len(found)
        missing = [s for s in symbols if s not in found]
        if missing:
            self.cache_stats.misses += len(missing)
            loaded = await self._instruments.get_many(missing)
            found.update(loaded)
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

    async def invalidate(self, symbols: list[str]) -> int:
        if self._cache is None:
            return 0
        return await self._cache.delete_many(symbols)

    async def warm(self, symbols: list[str]) -> int:
        loaded = await self._instruments.get_many(symbols)
        if self._cache is not None and loaded:
            await self._cache.set_many(loaded.values())
        return len(loaded)

    def _cache_failed(self, what: str, exc: Exception) -> None:
        self.cache_stats.errors += 1
        log.warning("instrument cache unavailable, using the database", op=what, error=str(exc))
