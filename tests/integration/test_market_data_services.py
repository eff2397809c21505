"""Market-data adapters on the real Postgres and Redis, and the cache-aside surviving a Redis
that stops mid-test (a private redis-server, so the shared one is never touched)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import asyncpg
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

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


class PrivateRedis:
    """A redis-server of this test's own on a free port (no persistence: it restarts empty)."""

    def __init__(self) -> None:
        self.server = shutil.which("redis-server") or pytest.fail("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen([self.server, *args], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:  # answering, not just started
            try:
                with SyncRedis(port=self.port, socket_connect_timeout=0.5) as client:
                    client.ping()
                return
            except RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis()
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


async def test_redis_stopped_mid_test_degrades_then_recovers(
    pool: asyncpg.Pool, private_redis: PrivateRedis
) -> None:
    redis = Redis.from_url(private_redis.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        quotes = RedisQuotes(redis)
        # No in-process copies: every call goes to the shared cache, so it shows Redis's state.
        service = MarketDataService(
            PostgresInstruments(pool), RedisInstrumentCache(redis, 300), quotes, local_ttl_s=0
        )
        await quotes.put(quote("AAPL", "190.00"))
        first = await service.market_data(["AAPL", "VOO"])
        assert [md.instrument.symbol for md in first] == ["AAPL", "VOO"]
        assert service.cache_stats.misses == 2
        await service.market_data(["AAPL", "VOO"])
        assert service.cache_stats.hits == 2  # filled by the first call

        private_redis.stop()
        # Redis is gone: instruments come from Postgres, quotes from what this process saw.
        during = await service.market_data(["AAPL", "VOO", "MSFT"])
        assert [md.instrument.symbol for md in during] == ["AAPL", "VOO", "MSFT"]
        assert during[0].quote is not None
        assert during[0].quote.last == first[0].quote.last  # type: ignore[union-attr]
        assert service.cache_stats.errors >= 1
        assert quotes.fallbacks >= 1

        private_redis.start()  # back, empty, on the same port: the client reconnects
        errors, fallbacks = service.cache_stats.errors, quotes.fallbacks
        await quotes.put(quote("AAPL", "191.00"))
        refill = await service.market_data(["AAPL", "VOO", "MSFT"])
        assert [md.instrument.symbol for md in refill] == ["AAPL", "VOO", "MSFT"]
        assert refill[0].quote is not None and refill[0].quote.last == Decimal("191.00")
        hits = service.cache_stats.hits
        after = await service.market_data(["AAPL", "VOO", "MSFT"])
        assert [md.instrument.symbol for md in after] == ["AAPL", "VOO", "MSFT"]
        assert service.cache_stats.hits == hits + 3  # the restarted Redis serves the cache
        assert (service.cache_stats.errors, quotes.fallbacks) == (errors, fallbacks)
        assert await redis.dbsize() > 0  # the cache and the quote were written again
    finally:
        await redis.aclose()
