"""Instruments and latest quotes in process memory."""

from __future__ import annotations

from collections.abc import Iterable

from hub.domain.instruments import Instrument
from hub.domain.quotes import Quote


class MemoryInstruments:
    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_symbol = {i.symbol: i for i in instruments}

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Instrument]:
        return {s: self._by_symbol[s] for s in symbols if s in self._by_symbol}

    async def search(self, query: str | None, limit: int) -> list[Instrument]:
        q = (query or "").strip().lower()
        found = [
            i
            for i in self._by_symbol.values()
            if not q or i.symbol.lower().startswith(q) or q in i.name.lower()
        ]
        return sorted(found, key=lambda i: (not i.symbol.lower().startswith(q), i.symbol))[:limit]


class MemoryQuotes:
    def __init__(self) -> None:
        self._latest: dict[str, Quote] = {}

    async def put(self, quote: Quote) -> None:
        self._latest[quote.symbol] = quote

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Quote]:
        return {s: self._latest[s] for s in symbols if s in self._latest}


class MemoryInstrumentCache:
    """A cache twin with the Redis one's contract (nothing expires here: tests drive TTL)."""

    def __init__(self) -> None:
        self._entries: dict[str, Instrument] = {}

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Instrument]:
        return {s: self._entries[s] for s in symbols if s in self._entries}

    async def set_many(self, instruments: Iterable[Instrument]) -> None:
        self._entries.update({i.symbol: i for i in instruments})

    async def delete_many(self, symbols: Iterable[str]) -> int:
        return sum(self._entries.pop(s, None) is not None for s in symbols)
