"""Market-data adapters on the real Postgres and Redis, and the cache-aside surviving a Redis
that stops mid-test (a private redis-server, so the shared one is never touched)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from redis.asyncio import Redis

from hub.adapters.postgres.instruments import PostgresInstruments, load_seed
from hub.adapters.redis_market import RedisInstrumentCache, RedisQuotes
from hub.services.market_data import MarketDataService
from tests.e2e.server import free_port
from tests.market_suite import (
    InstrumentCacheContract,
    InstrumentRepositoryContract,
    QuoteStoreContract,
    quote,
)

pytestmark = pytest.mark.integration


class TestPostgresInstruments(InstrumentRepositoryContract):
    @pytest.fixture
    def repo(self, pool: asyncpg.Pool) -> PostgresInstruments:
        return PostgresInstruments(pool)


class TestRedisInstrumentCache(InstrumentCacheContract):
    @pytest.fixture
    def cache(self, redis: Redis) -> RedisInstrumentCache:
        return RedisInstrumentCache(redis, ttl_s=300, prefix=f"test:{uuid.uuid4().hex}:")


class TestRedisQuotes(QuoteStoreContract):
    @pytest.fixture
    def store(self, redis: Redis) -> RedisQuotes:
        return RedisQuotes(redis, prefix=f"test:{uuid.uuid4().hex}:")


async def test_cache_entries_expire(redis: Redis) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    service_cache = RedisInstrumentCache(redis, ttl_s=300, prefix=prefix)
    from tests.market_suite import AAPL

    await service_cache.set_many([AAPL])
    ttl = await redis.ttl(prefix + "AAPL")
    assert 290 < ttl <= 300


async def test_seed_loads_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await load_seed(conn) == 0  # the fixture already loaded it
        await conn.execute("UPDATE instruments SET tradable = false WHERE symbol = 'AAPL'")
        await load_seed(conn)
        assert await conn.fetchval("SELECT tradable FROM instruments WHERE symbol='AAPL'") is False


@pytest.fixture
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    try:
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        process.kill()
        process.wait()


async def test_redis_stopped_mid_test_degrades_then_recovers(
    pool: asyncpg.Pool, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, process = private_redis
    redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        quotes = RedisQuotes(redis)
        service = MarketDataService(
            PostgresInstruments(pool), RedisInstrumentCache(redis, 300), quotes
        )
        await quotes.put(quote("AAPL", "190.00"))
        first = await service.market_data(["AAPL", "VOO"])
        assert [md.instrument.symbol for md in first] == ["AAPL", "VOO"]
        assert service.cache_stats.misses == 2

        process.kill()
        process.wait()
        # Redis is gone: instruments come from Postgres, quotes from what this process saw.
        during = await service.market_data(["AAPL", "VOO", "MSFT"])
        assert [md.instrument.symbol for md in during] == ["AAPL", "VOO", "MSFT"]
        assert during[0].quote is not None
        assert during[0].quote.last == first[0].quote.last  # type: ignore[union-attr]
        assert service.cache_stats.errors >= 1
        assert quotes.fallbacks >= 1
    finally:
        await redis.aclose()
