"""Fixed-window rate limiting in Redis, shared by every API node: INCR, then EXPIRE on the first
hit of a window, in one round trip (a transaction on one key: a cluster runs it on the key's
master)."""

from __future__ import annotations

import structlog
from redis.exceptions import RedisError

from hub.adapters.memory.ratelimit import MemoryRateLimiter
from hub.adapters.redis_client import RedisClient

log = structlog.get_logger("hub.ratelimit")


class RedisRateLimiter:
    def __init__(self, redis: RedisClient, prefix: str = "hub:rl:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window_s: int) -> int | None:
        full = self._prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(full)
            pipe.expire(full, window_s, nx=True)
            pipe.ttl(full)
            count, _, ttl = await pipe.execute()
        return max(int(ttl), 1) if int(count) > limit else None

    async def blocked(self, key: str, limit: int) -> int | None:
        full = self._prefix + key
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(full)
            pipe.ttl(full)
            count, ttl = await pipe.execute()
        if count is not None and int(count) >= limit:
            return max(int(ttl), 1)
        return None


class FallbackRateLimiter:
    """Redis first; while Redis is unreachable, count in process memory instead of failing the
    login. Limits then hold per node rather than cluster-wide: degraded, visible in the log and
    in `fallbacks`, and recovered as soon as Redis answers again."""

    def __init__(self, primary: RedisRateLimiter, fallback: MemoryRateLimiter) -> None:
        self._primary = primary
        self._fallback = fallback
        self.fallbacks = 0

    async def hit(self, key: str, limit: int, window_s: int) -> int | None:
        try:
            return await self._primary.hit(key, limit, window_s)
        except (RedisError, OSError) as exc:
            self._degraded(exc)
            return await self._fallback.hit(key, limit, window_s)

    async def blocked(self, key: str, limit: int) -> int | None:
        try:
            return await self._primary.blocked(key, limit)
        except (RedisError, OSError) as exc:
            self._degraded(exc)
            return await self._fallback.blocked(key, limit)

    def _degraded(self, exc: Exception) -> None:
        self.fallbacks += 1
        log.warning("rate limiter falling back to memory: Redis unavailable", error=str(exc))
