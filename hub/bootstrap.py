"""The one composition root: picks an adapter for every port from the settings and wires the
services. It runs inside the event loop (Starlette lifespan, `hub worker`, `hub feed`), never at
import time, and closes every resource it opened, in reverse order, on exit."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import structlog

from hub._background import background
from hub._feed import start_feed
from hub._persistence import Ports, ReadinessCheck, StartupError, open_stores
from hub.adapters.clock import SystemClock
from hub.adapters.jwt_tokens import JwtAccessTokens
from hub.adapters.memory.queue import MemoryWorkQueue
from hub.adapters.passwords import Argon2Hasher
from hub.adapters.streaming_auth import JwtAuthorizer, kind_of
from hub.config import Mode, Settings
from hub.domain.calendar import AlwaysOpen, ExchangeHours, MarketCalendar
from hub.domain.errors import EmailTaken
from hub.domain.users import User
from hub.services.admission import Admission
from hub.services.api_keys import ApiKeyService
from hub.services.auth import AuthConfig, AuthService, LoginLimits
from hub.services.execution import OrderProcessor
from hub.services.feed import FeedService
from hub.services.market_data import MarketDataService
from hub.services.market_hours import MarketHoursService
from hub.services.orders import OrderService
from hub.services.portfolio import PortfolioService
from hub.services.ports import QuoteStore
from hub.services.quote_mirror import QuoteMirror
from hub.services.relay import OutboxRelay
from hub.services.supervisor import OrderSupervisor
from hub.services.trading_ports import WorkQueue
from hub.services.watchlists import WatchlistService
from streaming import Engine

log = structlog.get_logger("hub.bootstrap")

DEMO_EMAIL = "demo@hub.local"
DEMO_PASSWORD = "Demo-Trader-2026!"

__all__ = ["DEMO_EMAIL", "DEMO_PASSWORD", "Container", "StartupError", "bootstrap"]


class Component(Protocol):
    def stats(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class Workers:
    """The parts that run in the background: /metrics reads their `stats()`, tests drive them."""

    relay: OutboxRelay
    admission: Admission
    processor: OrderProcessor
    supervisor: OrderSupervisor
    queue: WorkQueue
    quotes: QuoteStore
    feed: FeedService | None


@dataclass(frozen=True)
class Container:
    """What the entrypoints need, built once per process: the services, the streaming engine,
    the readiness checks, and the background workers."""

    settings: Settings
    auth: AuthService
    api_keys: ApiKeyService
    market_data: MarketDataService
    market_hours: MarketHoursService
    portfolio: PortfolioService
    orders: OrderService
    watchlists: WatchlistService
    engine: Engine
    workers: Workers
    # name -> check that raises when the dependency is down; /readyz runs them all.
    readiness: Mapping[str, ReadinessCheck]

    def stats(self) -> dict[str, dict[str, int]]:
        """Every component's counters by group (plain ints: services stay metrics-agnostic)."""
        w = self.workers
        parts: dict[str, Component | None] = {
            "streaming": self.engine,
            "api_keys": self.api_keys,
            "market_data_cache": self.market_data,
            "outbox": w.relay,
            "admission": w.admission,
            "worker": w.processor,
            "supervisor": w.supervisor,
            "feed": w.feed,
            "bars": w.feed.bars if w.feed is not None else None,
        }
        groups = {name: part.stats() for name, part in parts.items() if part is not None}
        groups["worker"] |= w.queue.stats()  # retried, dead_lettered: the worker's messages
        # A task count that only grows is a leak (benchmarks/soak.py watches it).
        groups["process"] = {"tasks": len(asyncio.all_tasks())}
        return groups


@asynccontextmanager
async def bootstrap(
    settings: Settings,
    *,
    run_feed: bool | None = None,
    run_worker: bool | None = None,
    serve_api: bool = True,
) -> AsyncIterator[Container]:
    """Build the container. `run_feed` and `run_worker` override the settings' defaults
    (`hub feed` and `hub worker` force theirs on); `serve_api` is false in those two, which
    take no order submits and so need no admission control running."""
    run_feed = settings.runs_feed if run_feed is None else run_feed
    run_worker = settings.runs_worker if run_worker is None else run_worker
    async with AsyncExitStack() as stack:
        readiness: dict[str, ReadinessCheck] = {}
        try:
            ports = await open_stores(settings, stack, readiness)
        except StartupError:
            raise
        except Exception as exc:
            raise StartupError(str(exc)) from exc
        queue = await _work_queue(settings, stack, readiness)
        if not readiness:
            readiness["memory"] = _always_up

        clock = SystemClock()
        calendar: MarketCalendar = (
            ExchangeHours() if settings.market_hours == "exchange" else AlwaysOpen()
        )
        # Every process that prices orders or triggers them follows the quote channels. Without
        # the feed here (services mode) the mirror also answers quote reads, instead of a store
        # round trip per order.
        mirror = QuoteMirror(ports.quotes)
        quotes: QuoteStore = mirror if not run_feed and settings.redis_url else ports.quotes
        market_data = MarketDataService(
            ports.instruments, ports.instrument_cache, quotes, bars=ports.bars
        )
        watchlists = WatchlistService(ports.watchlists, market_data, clock, ports.users)
        hasher = Argon2Hasher()
        stack.callback(hasher.close)
        auth = _auth(settings, ports, clock, watchlists, hasher)
        symbols = {i.symbol for i in await ports.instruments.search(None, 100_000)}
        engine = await _engine(settings, auth, symbols, stack, readiness)
        api_keys = ApiKeyService(ports.api_keys, ports.users, ports.limiter, clock)

        async def end_key_streams(key_id: uuid.UUID) -> None:
            await engine.revoke(key_id.hex)  # the key's claims carry its id as `sid`

        api_keys.revocation_listeners.append(end_key_streams)

        relay = OutboxRelay(ports.outbox, queue, engine)

        async def backlog() -> int:
            return await ports.outbox.pending() + await queue.depth()

        admission = Admission(
            max_in_flight=settings.submit_concurrency,
            max_backlog=settings.order_backlog_limit,
            max_per_account=settings.account_submit_concurrency,
            backlog=backlog,
        )
        orders = OrderService(
            unit_of_work=ports.unit_of_work,
            desk=ports.desk,
            reader=ports.reader,
            market_data=market_data,
            calendar=calendar,
            clock=clock,
            on_commit=relay.kick,
            admission=admission,
        )
        processor = OrderProcessor(
            unit_of_work=ports.unit_of_work,
            market_data=market_data,
            calendar=calendar,
            clock=clock,
            on_commit=relay.kick,
            max_batch=settings.worker_prefetch,
        )
        supervisor = OrderSupervisor(
            reader=ports.reader,
            queue=queue,
            market_data=market_data,
            calendar=calendar,
            clock=clock,
        )
        feed = await start_feed(settings, ports, engine, stack, readiness) if run_feed else None
        background(stack, relay.run(), "outbox-relay")
        if serve_api:
            background(stack, admission.run(), "order-admission")
        if settings.mode is Mode.EMBEDDED and settings.demo:
            await _seed_demo(auth)
        if run_worker:
            stack.push_async_callback(processor.aclose)  # after the consumer stopped
            background(stack, queue.consume(processor.handle), "order-worker")
            background(stack, ports.leadership(supervisor.run), "order-supervisor")
            mirror.listeners.append(supervisor.on_quote)  # the trigger index
        if run_worker or quotes is mirror:
            background(stack, mirror.follow(engine, symbols), "quote-mirror")
        yield Container(
            settings=settings,
            auth=auth,
            api_keys=api_keys,
            market_data=market_data,
            market_hours=MarketHoursService(calendar, clock),
            portfolio=PortfolioService(ports.accounts, ports.reader, market_data, clock),
            orders=orders,
            watchlists=watchlists,
            engine=engine,
            workers=Workers(relay, admission, processor, supervisor, queue, quotes, feed),
            readiness=readiness,
        )


async def _engine(
    settings: Settings,
    auth: AuthService,
    symbols: set[str],
    stack: AsyncExitStack,
    readiness: dict[str, ReadinessCheck],
) -> Engine:
    engine = Engine(
        settings.broker_url,
        authorizer=JwtAuthorizer(auth.authenticate, lambda: symbols),
        kind_of=kind_of,
        # A revoked session's access tokens are refused for new streams until they expire.
        revocation_ttl=settings.access_token_ttl_s,
    )
    try:
        await stack.enter_async_context(engine)
    except Exception as exc:
        raise StartupError(f"cannot start the streaming broker: {exc}") from exc

    async def engine_ready() -> None:
        if not engine.ready:
            raise ConnectionError("streaming broker is not connected")

    readiness["streaming"] = engine_ready

    async def end_streams(family_id: uuid.UUID) -> None:
        await engine.revoke(family_id.hex)  # the access tokens' `sid`

    auth.revocation_listeners.append(end_streams)
    return engine


async def _work_queue(
    settings: Settings, stack: AsyncExitStack, readiness: dict[str, ReadinessCheck]
) -> WorkQueue:
    if not settings.amqp_url:
        return MemoryWorkQueue(
            retry_delays=(0.5, 2.0, 5.0, 10.0), concurrency=settings.worker_prefetch
        )
    from hub.adapters.rabbitmq import RabbitWorkQueue

    queue = RabbitWorkQueue(
        settings.amqp_url,
        retry_delays=settings.retry_delays,
        prefetch=settings.worker_prefetch,
        prefix=settings.amqp_prefix,
    )
    try:
        await queue.start()
    except Exception as exc:
        raise StartupError(f"cannot connect to HUB_AMQP_URL: {exc}") from exc
    stack.push_async_callback(queue.close)

    async def check() -> None:
        if not queue.connected:
            raise ConnectionError("RabbitMQ connection is closed")

    readiness["rabbitmq"] = check
    return queue


def _auth(
    settings: Settings,
    ports: Ports,
    clock: SystemClock,
    watchlists: WatchlistService,
    hasher: Argon2Hasher,
) -> AuthService:
    secret = settings.jwt_secret
    if secret is None:
        # Embedded mode only (config refuses services mode without one): tokens die with
        # the process, which is what an in-memory demo wants anyway.
        secret = secrets.token_urlsafe(48)
    access = JwtAccessTokens(
        secret,
        ttl=timedelta(seconds=settings.access_token_ttl_s),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )

    async def welcome(user: User) -> None:
        await watchlists.create_default(user.id)

    return AuthService(
        users=ports.users,
        registrar=ports.registrar,
        refresh_tokens=ports.refresh_tokens,
        hasher=hasher,
        access_tokens=access,
        limiter=ports.limiter,
        clock=clock,
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
                registrations_per_client=settings.register_limit_per_client,
                registrations_window_s=settings.register_limit_window_s,
            ),
        ),
        after_register=welcome,
    )


async def _always_up() -> None:
    return None


async def _seed_demo(auth: AuthService) -> None:
    with suppress(EmailTaken):
        await auth.register(DEMO_EMAIL, DEMO_PASSWORD, "Demo Trader")
    log.info("demo user ready", email=DEMO_EMAIL)
