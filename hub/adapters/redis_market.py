"""Redis adapters for market data: the latest-quote store shared by every process, and the
instrument cache (cache-aside, key `market_data:<SYMBOL>`, as the original server used)."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import structlog
from redis.exceptions import RedisError

from hub.adapters.redis_client import RedisClient, get_values
from hub.domain.errors import DependencyUnavailable
from hub.domain.instruments import Instrument
from hub.domain.quotes import Quote

log = structlog.get_logger("hub.redis")

_quote_decoder = msgspec.json.Decoder(Quote)
_instrument_decoder = msgspec.json.Decoder(Instrument)
_encoder = msgspec.json.Encoder()


class RedisQuotes:
    """Latest quote per symbol. Reads that fail fall back to the last values this process saw,
    so pricing degrades to slightly stale quotes instead of failing; `fallbacks` counts it."""

    def __init__(self, redis: RedisClient, prefix: str = "hub:quote:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._seen: dict[str, Quote] = {}
        self.fallbacks = 0

    async def put(self, quote: Quote) -> None:
        self._seen[quote.symbol] = quote
        await self._redis.set(self._prefix + quote.symbol, _encoder.encode(quote))

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Quote]:
        wanted = list(symbols)
        try:
            values = await get_values(self._redis, [self._prefix + s for s in wanted])
        except (RedisError, OSError) as exc:
            self.fallbacks += 1
            log.warning("quote store unavailable, serving last seen quotes", error=str(exc))
            return {s: self._seen[s] for s in wanted if s in self._seen}
        found = {s: _quote_decoder.decode(v) for s, v in zip(wanted, values, strict=True) if v}
        self._seen.update(found)
        return found


class RedisInstrumentCache:
    def __init__(self, redis: RedisClient, ttl_s: int, prefix: str = "market_data:") -> None:
        self._redis = redis
        self._ttl = ttl_s
        self._prefix = prefix

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Instrument]:
        wanted = list(symbols)
        try:
            values = await get_values(self._redis, [self._prefix + s for s in wanted])
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"instrument cache: {exc}") from exc
        return {s: _instrument_decoder.decode(v) for s, v in zip(wanted, values, strict=True) if v}

    async def set_many(self, instruments: Iterable[Instrument]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in instruments:
                    pipe.set(self._prefix + i.symbol, _encoder.encode(i), ex=self._ttl)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"instrument cache: {exc}") from exc

    async def delete_many(self, symbols: Iterable[str]) -> int:
        keys = [self._prefix + s for s in symbols]
        if not keys:
            return 0
        try:
            return int(await self._redis.delete(*keys))
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"instrument cache: {exc}") from exc
