"""The one composition root: picks an adapter for every port from the settings and wires the
services. It runs inside the event loop (Starlette lifespan, feed main, CLI), never at import
time, and closes every resource it opened, in reverse order, on exit."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from starlette.routing import Route, WebSocketRoute

from hub.adapters.clock import SystemClock
from hub.adapters.memory.market import MemoryInstruments, MemoryQuotes
from hub.adapters.memory.ratelimit import MemoryRateLimiter
from hub.adapters.memory.users import (
    MemoryAccounts,
    MemoryRefreshTokens,
    MemoryRegistrar,
    MemoryUsers,
)
from hub.adapters.passwords import Argon2Hasher
from hub.adapters.seed import seed_instruments
from hub.adapters.simulator import Simulator
from hub.config import Mode, Settings
from hub.domain.errors import EmailTaken
from hub.entrypoints.live import JwtAuthorizer, kind_of
from hub.services.accounts import AccountService
from hub.services.auth import AuthConfig, AuthService, LoginLimits
from hub.services.feed import FeedService
from hub.services.market_data import MarketDataService
from hub.services.ports import (
    AccountRepository,
    InstrumentCache,
    InstrumentRepository,
    QuoteStore,
    RateLimiter,
    RefreshTokenRepository,
    UserAccountStore,
    UserRepository,
)
from hub.services.tokens import AccessTokens
from streaming import Engine

log = structlog.get_logger("hub.bootstrap")

DEMO_EMAIL = "demo@hub.local"
DEMO_PASSWORD = "Demo-Trader-2026!"

ReadinessCheck = Callable[[], Awaitable[None]]


class StartupError(Exception):
    """A dependency is unusable at start-up (unreachable, or its schema is not migrated)."""


@dataclass
class Container:
    """Everything the entrypoints need, built once per process."""

    settings: Settings
    auth: AuthService
    accounts: AccountService
    users: UserRepository
    market_data: MarketDataService
    engine: Engine
    ws_route: WebSocketRoute
    sse_route: Route
    symbols: set[str]
    feed: FeedService | None = None
    # name -> check that raises when the dependency is down; /readyz runs them all.
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    # name -> counters exported on /metrics (plain ints, so services stay metrics-agnostic).
    stats: dict[str, Callable[[], dict[str, int]]] = field(default_factory=dict)


@dataclass
class _Ports:
    users: UserRepository
    registrar: UserAccountStore
    refresh_tokens: RefreshTokenRepository
    accounts: AccountRepository
    instruments: InstrumentRepository
    instrument_cache: InstrumentCache | None = None
    quotes: QuoteStore = field(default_factory=MemoryQuotes)
    limiter: RateLimiter = field(default_factory=MemoryRateLimiter)


@asynccontextmanager
async def bootstrap(
    settings: Settings, *, run_feed: bool | None = None
) -> AsyncIterator[Container]:
    """Build the container. `run_feed` overrides settings.runs_feed (`hub feed` forces it on)."""
    async with AsyncExitStack() as stack:
        readiness: dict[str, ReadinessCheck] = {}
        ports = await _persistence(settings, stack, readiness)
        if settings.redis_url:
            await _redis(settings, ports, stack, readiness)
        if settings.amqp_url:
            readiness["rabbitmq"] = await _amqp_check(settings.amqp_url, stack)
        if not readiness:
            readiness["memory"] = _always_up

        auth = _auth(settings, ports)
        market_data = MarketDataService(ports.instruments, ports.instrument_cache, ports.quotes)
        symbols = {i.symbol for i in await ports.instruments.search(None, 100_000)}

        engine = Engine(
            settings.broker_url,
            authorizer=JwtAuthorizer(auth.authenticate, lambda: symbols),
            kind_of=kind_of,
        )
        try:
            await stack.enter_async_context(engine)
        except Exception as exc:
            raise StartupError(f"cannot start the streaming broker: {exc}") from exc

        async def engine_ready() -> None:
            if not engine.ready:
                raise ConnectionError("streaming broker is not connected")

        readiness["streaming"] = engine_ready
        container = Container(
            settings=settings,
            auth=auth,
            accounts=AccountService(ports.accounts),
            users=ports.users,
            market_data=market_data,
            engine=engine,
            ws_route=engine.websocket_route("/ws"),
            sse_route=engine.sse_route("/sse"),
            symbols=symbols,
            readiness=readiness,
            stats={
                "streaming": engine.stats,
                "market_data_cache": lambda: vars(market_data.cache_stats).copy(),
            },
        )
        if settings.mode is Mode.EMBEDDED and settings.demo:
            await _seed_demo(auth)
        if settings.runs_feed if run_feed is None else run_feed:
            container.feed = await _start_feed(settings, ports.quotes, engine, stack)
            container.stats["feed"] = lambda: {
                "published": container.feed.published if container.feed else 0,
                "errors": container.feed.errors if container.feed else 0,
            }
        yield container


def background(stack: AsyncExitStack, coro: Coroutine[Any, Any, None], name: str) -> None:
    """Run `coro` until the stack closes; then cancel it and wait for it to finish."""
    task = asyncio.create_task(coro, name=name)

    def done(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("background task died", task=name, error=repr(t.exception()))

    task.add_done_callback(done)

    async def stop() -> None:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


async def _start_feed(
    settings: Settings, quotes: QuoteStore, engine: Engine, stack: AsyncExitStack
) -> FeedService:
    simulator = Simulator(
        seed_instruments(),
        clock=SystemClock(),
        seed=settings.feed_seed,
        quotes_per_second=settings.feed_quotes_per_second,
    )
    feed = FeedService(simulator, quotes, engine)
    await feed.prime()
    background(stack, feed.run(), "market-feed")
    log.info("simulated market feed running", quotes_per_second=settings.feed_quotes_per_second)
    return feed


def _auth(settings: Settings, ports: _Ports) -> AuthService:
    secret = settings.jwt_secret
    if secret is None:
        # Embedded mode only (config refuses services mode without one): tokens die with
        # the process, which is what an in-memory demo wants anyway.
        secret = secrets.token_urlsafe(48)
    access = AccessTokens(
        secret,
        ttl=timedelta(seconds=settings.access_token_ttl_s),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    return AuthService(
        users=ports.users,
        registrar=ports.registrar,
        refresh_tokens=ports.refresh_tokens,
        hasher=Argon2Hasher(),
        access_tokens=access,
        limiter=ports.limiter,
        clock=SystemClock(),
        config=AuthConfig(
            paper_cash=settings.paper_cash,
            currency=settings.currency,
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
            admin_emails=settings.admin_emails,
            limits=LoginLimits(
                per_email=settings.login_limit_per_email,
                per_email_window_s=settings.login_limit_per_email_window_s,
                per_client=settings.login_limit_per_client,
                per_client_window_s=settings.login_limit_per_client_window_s,
            ),
        ),
    )


async def _always_up() -> None:
    return None


async def _persistence(
    settings: Settings, stack: AsyncExitStack, readiness: dict[str, ReadinessCheck]
) -> _Ports:
    if not settings.database_url:
        users, accounts = MemoryUsers(), MemoryAccounts()
        return _Ports(
            users=users,
            registrar=MemoryRegistrar(users, accounts),
            refresh_tokens=MemoryRefreshTokens(),
            accounts=accounts,
            instruments=MemoryInstruments(s.instrument for s in seed_instruments()),
        )
    # Imported here so the embedded default never loads the drivers it does not use.
    from hub.adapters.postgres import users as pg
    from hub.adapters.postgres.database import create_pool, ping
    from hub.adapters.postgres.instruments import PostgresInstruments
    from hub.adapters.postgres.migrations import pending

    try:
        pool = await create_pool(settings.database_url)
    except Exception as exc:
        raise StartupError(f"cannot connect to HUB_DATABASE_URL: {exc}") from exc
    stack.push_async_callback(pool.close)
    async with pool.acquire() as conn:
        missing = await pending(conn)
    if missing:
        raise StartupError(
            f"the database schema is behind ({', '.join(missing)} not applied): run `hub migrate`"
        )

    async def check() -> None:
        await ping(pool)

    readiness["postgres"] = check
    return _Ports(
        users=pg.PostgresUsers(pool),
        registrar=pg.PostgresRegistrar(pool),
        refresh_tokens=pg.PostgresRefreshTokens(pool),
        accounts=pg.PostgresAccounts(pool),
        instruments=PostgresInstruments(pool),
    )


async def _redis(
    settings: Settings, ports: _Ports, stack: AsyncExitStack, readiness: dict[str, ReadinessCheck]
) -> None:
    from redis.asyncio import Redis

    from hub.adapters.redis_market import RedisInstrumentCache, RedisQuotes
    from hub.adapters.redis_ratelimit import FallbackRateLimiter, RedisRateLimiter

    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    stack.push_async_callback(redis.aclose)

    async def check() -> None:
        await redis.ping()

    readiness["redis"] = check
    ports.limiter = FallbackRateLimiter(RedisRateLimiter(redis), MemoryRateLimiter())
    ports.quotes = RedisQuotes(redis)
    ports.instrument_cache = RedisInstrumentCache(redis, settings.cache_ttl_s)


async def _amqp_check(url: str, stack: AsyncExitStack) -> ReadinessCheck:
    import aio_pika

    # A robust connection reconnects by itself; readiness reports whether it is up right now.
    try:
        connection = await aio_pika.connect_robust(url, timeout=5)
    except Exception as exc:
        raise StartupError(f"cannot connect to HUB_AMQP_URL: {exc}") from exc
    stack.push_async_callback(connection.close)

    async def check() -> None:
        if connection.is_closed:
            raise ConnectionError("RabbitMQ connection is closed")

    return check


async def _seed_demo(auth: AuthService) -> None:
    with suppress(EmailTaken):
        await auth.register(DEMO_EMAIL, DEMO_PASSWORD, "Demo Trader")
    log.info("demo user ready", email=DEMO_EMAIL)
