"""Opening the stores: memory twins by default, PostgreSQL and Redis when configured. Part of the
composition root (bootstrap): it picks adapters and holds no logic of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

from hub.adapters.memory.api_keys import MemoryApiKeys
from hub.adapters.memory.bars import MemoryBars
from hub.adapters.memory.market import MemoryInstruments, MemoryQuotes
from hub.adapters.memory.ratelimit import MemoryRateLimiter
from hub.adapters.memory.trading import MemoryTrading, MemoryTradingReader
from hub.adapters.memory.users import (
    MemoryAccounts,
    MemoryRefreshTokens,
    MemoryRegistrar,
    MemoryUsers,
)
from hub.adapters.memory.watchlists import MemoryWatchlists
from hub.adapters.seed import seed_instruments
from hub.config import Settings
from hub.services.bar_ports import BarStore
from hub.services.ports import (
    AccountRepository,
    ApiKeyRepository,
    InstrumentCache,
    InstrumentRepository,
    QuoteStore,
    RateLimiter,
    RefreshTokenRepository,
    UserAccountStore,
    UserRepository,
    WatchlistRepository,
)
from hub.services.trading_ports import OrderDesk, Outbox, TradingReader, UnitOfWorkFactory

log = structlog.get_logger("hub.bootstrap")

ReadinessCheck = Callable[[], Awaitable[None]]
# Runs the coroutine only while this process is the one leader (of the order supervisor).
Leadership = Callable[[Callable[[], Coroutine[Any, Any, None]]], Coroutine[Any, Any, None]]


class StartupError(Exception):
    """A dependency is unusable at start-up (unreachable, or its schema is not migrated)."""


async def _always_leader(run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    await run()


@dataclass(frozen=True)
class Ports:
    users: UserRepository
    registrar: UserAccountStore
    refresh_tokens: RefreshTokenRepository
    accounts: AccountRepository
    instruments: InstrumentRepository
    watchlists: WatchlistRepository
    unit_of_work: UnitOfWorkFactory
    desk: OrderDesk
    reader: TradingReader
    outbox: Outbox
    api_keys: ApiKeyRepository
    leadership: Leadership = _always_leader
    instrument_cache: InstrumentCache | None = None
    quotes: QuoteStore = field(default_factory=MemoryQuotes)
    bars: BarStore = field(default_factory=MemoryBars)
    limiter: RateLimiter = field(default_factory=MemoryRateLimiter)


async def open_stores(
    settings: Settings, stack: AsyncExitStack, readiness: dict[str, ReadinessCheck]
) -> Ports:
    """Every store, registering a readiness check per dependency and its closing on `stack`."""
    ports = await _postgres(settings.database_url, stack, readiness) or _memory()
    if settings.redis_url:
        ports = await _with_redis(
            ports,
            settings.redis_url,
            settings.cache_ttl_s,
            stack,
            readiness,
            cluster=settings.redis_cluster,
        )
    return ports


def _memory() -> Ports:
    users, accounts = MemoryUsers(), MemoryAccounts()
    trading = MemoryTrading(accounts)
    return Ports(
        users=users,
        registrar=MemoryRegistrar(users, accounts),
        refresh_tokens=MemoryRefreshTokens(),
        accounts=accounts,
        instruments=MemoryInstruments(s.instrument for s in seed_instruments()),
        watchlists=MemoryWatchlists(),
        unit_of_work=trading.unit_of_work,
        desk=trading,
        reader=MemoryTradingReader(trading),
        outbox=trading,
        api_keys=MemoryApiKeys(),
    )


async def _postgres(
    url: str | None, stack: AsyncExitStack, readiness: dict[str, ReadinessCheck]
) -> Ports | None:
    if not url:
        return None
    # Imported here so the embedded default never loads the drivers it does not use.
    from hub.adapters.postgres import users as pg
    from hub.adapters.postgres.api_keys import PostgresApiKeys
    from hub.adapters.postgres.bars import PostgresBars
    from hub.adapters.postgres.database import close_pool, create_pool, ping
    from hub.adapters.postgres.desk import PostgresOrderDesk
    from hub.adapters.postgres.instruments import PostgresInstruments
    from hub.adapters.postgres.leadership import postgres_leadership
    from hub.adapters.postgres.migrations import pending
    from hub.adapters.postgres.outbox import PostgresOutbox
    from hub.adapters.postgres.reader import PostgresTradingReader
    from hub.adapters.postgres.trading import PostgresUnitOfWork
    from hub.adapters.postgres.watchlists import PostgresWatchlists

    try:
        pool = await create_pool(url, min_size=10, max_size=20)
    except Exception as exc:
        raise StartupError(f"cannot connect to HUB_DATABASE_URL: {exc}") from exc
    stack.push_async_callback(close_pool, pool)
    async with pool.acquire() as conn:
        missing = await pending(conn)
    if missing:
        raise StartupError(
            f"the database schema is behind ({', '.join(missing)} not applied): run `hub migrate`"
        )

    async def check() -> None:
        await ping(pool)

    readiness["postgres"] = check
    return Ports(
        users=pg.PostgresUsers(pool),
        registrar=pg.PostgresRegistrar(pool),
        refresh_tokens=pg.PostgresRefreshTokens(pool),
        accounts=pg.PostgresAccounts(pool),
        instruments=PostgresInstruments(pool),
        watchlists=PostgresWatchlists(pool),
        unit_of_work=lambda: PostgresUnitOfWork(pool),
        desk=PostgresOrderDesk(pool),
        reader=PostgresTradingReader(pool),
        outbox=PostgresOutbox(pool),
        bars=PostgresBars(pool),
        api_keys=PostgresApiKeys(pool),
        leadership=lambda run: postgres_leadership(url, run),
    )


def without_prefix(url: str) -> str:
    """HUB_REDIS_URL may carry `?prefix=...`: the streaming broker's channel and key prefix, which
    isolates several Hubs on one Redis (pub/sub channels ignore database numbers). redis-py does
    not know the parameter, so the other clients get the URL without it."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "prefix"]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _with_redis(
    ports: Ports,
    url: str,
    cache_ttl_s: int,
    stack: AsyncExitStack,
    readiness: dict[str, ReadinessCheck],
    *,
    cluster: bool,
) -> Ports:
    from hub.adapters.redis_client import redis_client
    from hub.adapters.redis_market import RedisInstrumentCache, RedisQuotes
    from hub.adapters.redis_ratelimit import FallbackRateLimiter, RedisRateLimiter

    redis = redis_client(without_prefix(url), cluster=cluster)
    stack.push_async_callback(redis.aclose)

    async def check() -> None:
        await redis.ping()

    readiness["redis"] = check
    return replace(
        ports,
        limiter=FallbackRateLimiter(RedisRateLimiter(redis), MemoryRateLimiter()),
        quotes=RedisQuotes(redis),
        instrument_cache=RedisInstrumentCache(redis, cache_ttl_s),
    )
