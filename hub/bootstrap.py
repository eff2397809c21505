"""The one composition root: picks an adapter for every port from the settings and wires the
services. It runs inside the event loop (Starlette lifespan, worker main, CLI), never at import
time, and closes every resource it opened, in reverse order, on exit."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from hub.adapters.clock import SystemClock
from hub.adapters.memory.ratelimit import MemoryRateLimiter
from hub.adapters.memory.users import (
    MemoryAccounts,
    MemoryRefreshTokens,
    MemoryRegistrar,
    MemoryUsers,
)
from hub.adapters.passwords import Argon2Hasher
from hub.config import Mode, Settings
from hub.domain.errors import EmailTaken
from hub.services.accounts import AccountService
from hub.services.auth import AuthConfig, AuthService, LoginLimits
from hub.services.ports import (
    AccountRepository,
    RateLimiter,
    RefreshTokenRepository,
    UserAccountStore,
    UserRepository,
)
from hub.services.tokens import AccessTokens

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
    # name -> check that raises when the dependency is down; /readyz runs them all.
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    jwt_secret_generated: bool = False


@dataclass
class _Ports:
    users: UserRepository
    registrar: UserAccountStore
    refresh_tokens: RefreshTokenRepository
    accounts: AccountRepository


@asynccontextmanager
async def bootstrap(settings: Settings) -> AsyncIterator[Container]:
    async with AsyncExitStack() as stack:
        readiness: dict[str, ReadinessCheck] = {}
        ports = await _persistence(settings, stack, readiness)
        limiter = await _rate_limiter(settings, stack, readiness)
        if settings.amqp_url:
            readiness["rabbitmq"] = await _amqp_check(settings.amqp_url, stack)
        if not readiness:
            readiness["memory"] = _always_up

        secret = settings.jwt_secret
        generated = secret is None
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
        auth = AuthService(
            users=ports.users,
            registrar=ports.registrar,
            refresh_tokens=ports.refresh_tokens,
            hasher=Argon2Hasher(),
            access_tokens=access,
            limiter=limiter,
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
        container = Container(
            settings=settings,
            auth=auth,
            accounts=AccountService(ports.accounts),
            users=ports.users,
            readiness=readiness,
            jwt_secret_generated=generated,
        )
        if settings.mode is Mode.EMBEDDED and settings.demo:
            await _seed_demo(auth)
        yield container


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
        )
    # Imported here so the embedded default never loads the drivers it does not use.
    from hub.adapters.postgres import users as pg
    from hub.adapters.postgres.database import create_pool, ping
    from hub.adapters.postgres.migrations import pending

    try:
        pool = await create_pool(settings.database_url)
    except (OSError, Exception) as exc:
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
    )


async def _rate_limiter(
    settings: Settings, stack: AsyncExitStack, readiness: dict[str, ReadinessCheck]
) -> RateLimiter:
    if not settings.redis_url:
        return MemoryRateLimiter()
    from redis.asyncio import Redis

    from hub.adapters.redis_ratelimit import FallbackRateLimiter, RedisRateLimiter

    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    stack.push_async_callback(redis.aclose)

    async def check() -> None:
        await redis.ping()

    readiness["redis"] = check
    return FallbackRateLimiter(RedisRateLimiter(redis), MemoryRateLimiter())


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
