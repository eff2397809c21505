"""Market data on memory adapters: contracts, cache-aside behaviour, routes, legacy shape."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

import pytest
from msgspec.structs import replace
from starlette.testclient import TestClient

from hub.adapters.memory.market import MemoryInstrumentCache, MemoryInstruments, MemoryQuotes
from hub.adapters.seed import seed_instruments
from hub.config import Settings
from hub.domain.errors import DependencyUnavailable, InvalidInput
from hub.domain.instruments import Instrument
from hub.entrypoints.http.app import create_app
from hub.services.market_data import MarketDataService, parse_symbols
from tests.http_suite import assert_problem, bearer, signup
from tests.market_suite import (
    AAPL,
    InstrumentCacheContract,
    InstrumentRepositoryContract,
    QuoteStoreContract,
    quote,
)


def memory_instruments() -> MemoryInstruments:
    return MemoryInstruments(s.instrument for s in seed_instruments())


class TestMemoryInstruments(InstrumentRepositoryContract):
    @pytest.fixture
    def repo(self) -> MemoryInstruments:
        return memory_instruments()


class TestMemoryCache(InstrumentCacheContract):
    @pytest.fixture
    def cache(self) -> MemoryInstrumentCache:
        return MemoryInstrumentCache()


class TestMemoryQuotes(QuoteStoreContract):
    @pytest.fixture
    def store(self) -> MemoryQuotes:
        return MemoryQuotes()


class BrokenCache:
    async def get_many(self, symbols: Iterable[str]) -> dict[str, Instrument]:
        raise DependencyUnavailable("down")

    async def set_many(self, instruments: Iterable[Instrument]) -> None:
        raise DependencyUnavailable("down")

    async def delete_many(self, symbols: Iterable[str]) -> int:
        raise DependencyUnavailable("down")


async def test_cache_aside_counts_hits_and_misses() -> None:
    cache = MemoryInstrumentCache()
    service = MarketDataService(memory_instruments(), cache, MemoryQuotes())
    await service.instruments(["AAPL", "MSFT"])
    assert (service.cache_stats.hits, service.cache_stats.misses) == (0, 2)
    assert set(await cache.get_many(["AAPL", "MSFT"])) == {"AAPL", "MSFT"}
    await service.instruments(["AAPL", "MSFT", "VOO"])
    assert (service.cache_stats.hits, service.cache_stats.misses) == (2, 3)


async def test_broken_cache_falls_back_to_the_repository() -> None:
    quotes = MemoryQuotes()
    await quotes.put(quote("AAPL", "190.00"))
    service = MarketDataService(memory_instruments(), BrokenCache(), quotes)
    found = await service.market_data(["AAPL", "VOO"])
    assert [md.instrument.symbol for md in found] == ["AAPL", "VOO"]
    assert found[0].quote == quote("AAPL", "190.00")
    assert found[1].quote is None
    assert service.cache_stats.errors == 2  # the read and the fill


class Catalogue:
    """The instrument table, which an operator may edit behind the service's back."""

    def __init__(self) -> None:
        self.rows = {s.instrument.symbol: s.instrument for s in seed_instruments()}

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Instrument]:
        return await MemoryInstruments(self.rows.values()).get_many(symbols)

    async def search(self, query: str | None, limit: int) -> list[Instrument]:
        return await MemoryInstruments(self.rows.values()).search(query, limit)

    def add(self, symbol: str) -> None:
        self.rows[symbol] = replace(AAPL, symbol=symbol, name=f"{symbol} Corp.")


async def test_the_instrument_list_is_held_like_the_by_symbol_copies() -> None:
    catalogue = Catalogue()
    service = MarketDataService(catalogue, None, MemoryQuotes())
    listed = await service.search(None, 50)
    assert listed == await catalogue.search(None, 50)
    assert await service.search("  ", 3) == listed[:3]
    catalogue.add("AAA")
    assert await service.search(None, 50) == listed  # this process's copy, for local_ttl_s
    found = await service.search("aa", 5)  # a search asks the repository
    assert [i.symbol for i in found] == ["AAA", "AAPL"]
    await service.invalidate(["AAA"])  # an admin's invalidation clears the copy at once
    assert [i.symbol for i in await service.search(None, 2)] == ["AAA", "AAPL"]
    catalogue.add("AAB")
    await service.warm(["AAB"])  # and so does warming
    assert [i.symbol for i in await service.search(None, 3)] == ["AAA", "AAB", "AAPL"]


async def test_the_instrument_list_expires() -> None:
    catalogue = Catalogue()
    service = MarketDataService(catalogue, None, MemoryQuotes(), local_ttl_s=0.05)
    await service.search(None, 50)
    catalogue.add("AAA")
    async with asyncio.timeout(5):  # until the held list expires
        while (await service.search(None, 50))[0].symbol != "AAA":  # noqa: ASYNC110 - a TTL
            await asyncio.sleep(0.01)


def test_parse_symbols() -> None:
    assert parse_symbols(" aapl, MSFT,aapl ,,") == ["AAPL", "MSFT"]
    for bad in ("", " , ", "AA PL", "X" * 16, ",".join(f"S{i}" for i in range(101))):
        with pytest.raises(InvalidInput):
            parse_symbols(bad)


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(admin_emails=frozenset({"admin@example.com"}), feed_quotes_per_second=200)
    with TestClient(create_app(settings)) as client:
        yield client


def test_market_data_route(client: TestClient) -> None:
    auth = bearer(signup(client))
    r = client.get("/api/v1/market-data?symbols=aapl,NOPE,btc-usd", headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert [d["symbol"] for d in body["data"]] == ["AAPL", "BTC-USD"]
    assert body["unknown_symbols"] == ["NOPE"]
    q = body["data"][0]["quote"]
    assert isinstance(q["last"], str)
    assert float(q["bid"]) < float(q["ask"])
    assert_problem(client.get("/api/v1/market-data", headers=auth), 422, "validation_error")
    assert_problem(client.get("/api/v1/market-data?symbols=AAPL"), 401, "invalid_token")


def test_instruments_routes(client: TestClient) -> None:
    auth = bearer(signup(client))
    listed = client.get("/api/v1/instruments?q=vanguard", headers=auth).json()
    assert {i["symbol"] for i in listed} >= {"VOO", "VBR", "VTI", "VNQ"}
    one = client.get("/api/v1/instruments/voo", headers=auth).json()
    assert one["category"] == "etf"
    assert one["tick_size"] == "0.01"
    assert_problem(client.get("/api/v1/instruments/NOPE", headers=auth), 404, "not_found")
    assert_problem(client.get("/api/v1/instruments?limit=0", headers=auth), 422, "validation_error")


def test_admin_cache_routes_need_admin(client: TestClient) -> None:
    user = bearer(signup(client))
    r = client.post("/api/v1/admin/market-data/cache/warm?symbols=AAPL", headers=user)
    assert_problem(r, 403, "forbidden")
    admin = bearer(signup(client, "admin@example.com"))
    r = client.post(
        "/api/v1/admin/market-data/cache/warm", headers=admin, json={"symbols": ["AAPL", "VOO"]}
    )
    assert r.status_code == 200
    assert r.json() == {
        "message": "cache warmed",
        "symbols": ["AAPL", "VOO"],
        "count": 2,
        "status": "success",
    }
    r = client.post("/api/v1/admin/market-data/cache/invalidate?symbols=AAPL", headers=admin)
    assert r.status_code == 200
    assert r.json()["symbols"] == ["AAPL"]
    r = client.post("/api/v1/admin/market-data/cache/invalidate", headers=admin)
    assert_problem(r, 422, "validation_error")


def test_legacy_get_market_data_shape(client: TestClient) -> None:
    auth = bearer(signup(client))
    for method in ("GET", "POST"):
        r = client.request(method, "/getMarketData?symbols=VOO,DIS,AMZN,VBR", headers=auth)
        assert r.status_code == 200
        rows = r.json()
        assert [set(row) for row in rows] == [{"Symbol", "Name", "LastQuote", "Category"}] * 4
        assert {row["Symbol"]: row["Category"] for row in rows} == {
            "VOO": 2,
            "DIS": 1,
            "AMZN": 1,
            "VBR": 2,
        }
        assert all(isinstance(row["LastQuote"], float) and row["LastQuote"] > 0 for row in rows)
        # The number is the exact decimal: two places, as the quote has.
        assert b'"LastQuote":' in r.content
    assert client.get("/getMarketData?symbols=VOO").status_code == 401
