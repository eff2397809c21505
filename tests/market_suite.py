"""Contracts for the market-data ports, shared by memory and real adapters."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hub.domain.instruments import Category, Instrument
from hub.domain.quotes import Quote
from hub.services.ports import InstrumentCache, InstrumentRepository, QuoteStore

AAPL = Instrument(
    symbol="AAPL",
    name="Apple Inc.",
    category=Category.STOCK,
    currency="USD",
    tick_size=Decimal("0.01"),
    lot_size=Decimal("1"),
)


def quote(symbol: str = "AAPL", last: str = "189.46") -> Quote:
    p = Decimal(last)
    return Quote(
        symbol=symbol,
        bid=p - Decimal("0.04"),
        ask=p + Decimal("0.04"),
        last=p,
        bid_size=Decimal(100),
        ask_size=Decimal(200),
        open=p,
        high=p,
        low=p,
        prev_close=p,
        timestamp=datetime(2026, 11, 28, 15, 0, tzinfo=UTC),
    )


class InstrumentRepositoryContract:
    async def test_get_many_returns_known_only(self, repo: InstrumentRepository) -> None:
        found = await repo.get_many(["AAPL", "VOO", "NOPE"])
        assert set(found) == {"AAPL", "VOO"}
        assert found["AAPL"].tick_size == Decimal("0.01")
        assert found["VOO"].category is Category.ETF

    async def test_search_prefers_symbol_prefix(self, repo: InstrumentRepository) -> None:
        found = await repo.search("v", 50)
        symbols = [i.symbol for i in found]
        assert symbols[0].startswith("V")
        assert "VOO" in symbols and "VBR" in symbols

    async def test_search_by_name_and_limit(self, repo: InstrumentRepository) -> None:
        assert [i.symbol for i in await repo.search("bitcoin", 10)] == ["BTC-USD"]
        assert len(await repo.search(None, 5)) == 5
        assert len(await repo.search("", 1000)) >= 30
        assert await repo.search("%", 10) == []


class InstrumentCacheContract:
    async def test_round_trip_and_delete(self, cache: InstrumentCache) -> None:
        assert await cache.get_many(["AAPL"]) == {}
        await cache.set_many([AAPL])
        assert await cache.get_many(["AAPL", "MSFT"]) == {"AAPL": AAPL}
        assert await cache.delete_many(["AAPL", "MSFT"]) == 1
        assert await cache.get_many(["AAPL"]) == {}


class QuoteStoreContract:
    async def test_latest_wins(self, store: QuoteStore) -> None:
        await store.put(quote(last="100.00"))
        await store.put(quote(last="101.00"))
        await store.put(quote("MSFT", "400.00"))
        got = await store.get_many(["AAPL", "MSFT", "NOPE"])
        assert got["AAPL"].last == Decimal("101.00")
        assert got["MSFT"] == quote("MSFT", "400.00")
        assert "NOPE" not in got
