"""The Redis rate limiter passes the memory twin's contract, and falls back when Redis fails."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from hub.adapters.memory.ratelimit import MemoryRateLimiter
from hub.adapters.redis_ratelimit import FallbackRateLimiter, RedisRateLimiter
from tests.contracts import RateLimiterContract

pytestmark = pytest.mark.integration


class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self, redis: Redis) -> RedisRateLimiter:
        return RedisRateLimiter(redis, prefix="hub:test:rl:")


async def test_fallback_counts_in_memory_while_redis_is_down() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        limiter = FallbackRateLimiter(RedisRateLimiter(dead), MemoryRateLimiter())
        assert await limiter.hit("k", 1, 60) is None
        assert await limiter.hit("k", 1, 60) is not None
        assert limiter.fallbacks == 2
    finally:
        await dead.aclose()
