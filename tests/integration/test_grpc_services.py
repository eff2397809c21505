"""gRPC MarketDataService on the services wiring: instruments in Postgres, quotes in the Redis
quote store, streams fed through the Redis streaming broker by another engine or another OS
process (`hub feed`), the `hub serve` app (HTTP, WebSocket and gRPC on one container).

Every test gets its own Postgres schema, its own broker prefix and its own instrument symbols
(the Redis quote store and instrument cache keys carry no prefix: unique symbols keep this test's
keys apart from anything else on the shared Redis); its Redis keys are deleted afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import asyncpg
import grpc
import jwt
import msgspec
import pytest
from redis.asyncio import Redis

from hub.adapters.jwt_tokens import JwtAccessTokens
from hub.adapters.redis_market import RedisQuotes
from hub.adapters.streaming_auth import kind_of
from hub.bootstrap import Container
from hub.config import Settings
from hub.domain.quotes import Quote
from hub.domain.users import Role
from hub.entrypoints.grpc._gen import market_data_pb2 as pb
from hub.entrypoints.grpc.client import MarketDataClient
from hub.entrypoints.grpc.server import grpc_server
from hub.entrypoints.http.app import create_app
from hub.services.feed import FeedService, QuoteListener
from streaming import Engine
from tests.http_suite import PASSWORD
from tests.market_suite import quote
from tests.unit.streaming.support import FakeAuthorizer, client, eventually, serve_app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECRET = "integration-secret-0123456789abcdef"
WAIT = 10.0  # generous bounds (the box may be busy); positive waits end as soon as they hold
START = 60.0  # a `hub feed` process importing and bootstrapping on a busy box
LIMIT = 16  # streams per user and server: WebSocket, SSE and gRPC together (docs/grpc.md)


# --- fixtures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """What this test creates, all carrying one tag: the broker prefix, its instruments and the
    clients it logs in from (rate-limit keys)."""

    tag: str

    @property
    def prefix(self) -> str:
        return f"test:grpc-{self.tag}:"

    @property
    def stock(self) -> str:  # has a quote in the store
        return f"G{self.tag.upper()}S"

    @property
    def quiet(self) -> str:  # has none
        return f"G{self.tag.upper()}Q"

    @property
    def client(self) -> str:
        return f"grpc-test-{self.tag}"

    def email(self) -> str:
        return f"grpc-{self.tag}-{uuid.uuid4().hex[:6]}@example.com"


@pytest.fixture
async def names(pool: asyncpg.Pool, redis: Redis) -> AsyncIterator[Names]:
    """Two instruments of this test's own in its Postgres schema; afterwards every Redis key
    carrying the tag is deleted, and the seed symbols' quote keys a `hub feed` made."""
    n = Names(uuid.uuid4().hex[:8])
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO instruments (symbol, name, category, currency, tick_size, lot_size)"
            " VALUES ($1, $2, 'stock', 'USD', 0.01, 1)",
            [(n.stock, f"Test {n.tag} stock"), (n.quiet, f"Test {n.tag} quiet")],
        )
    before = {key async for key in redis.scan_iter(match="hub:quote:*")}
    try:
        yield n
    finally:
        keys = {key async for key in redis.scan_iter(match="hub:quote:*")} - before
        for pattern in (f"*{n.tag}*", f"*{n.tag.upper()}*"):
            keys |= {key async for key in redis.scan_iter(match=pattern)}
        if keys:
            await redis.delete(*keys)


@dataclass
class Hub:
    container: Container
    address: str  # HTTP/WebSocket host:port
    target: str  # gRPC host:port
    broker_url: str
    names: Names

    async def login(self) -> tuple[str, str]:
        """A new user's (access token, refresh token)."""
        email = self.names.email()
        await self.container.auth.register(email, PASSWORD, None)
        pair = await self.container.auth.login(email, PASSWORD, self.names.client)
        return pair.access_token, pair.refresh_token


@contextlib.asynccontextmanager
async def services_hub(
    schema_url: str, redis_url: str, names: Names, *, ttl: int = 900
) -> AsyncIterator[Hub]:
    """`hub serve` in services mode (no feed in this process), its gRPC server in this loop."""
    broker_url = f"{redis_url}?prefix={names.prefix}"
    settings = Settings(
        database_url=schema_url,
        redis_url=broker_url,
        jwt_secret=SECRET,
        access_token_ttl_s=ttl,
        feed_in_process=False,
    )
    app = create_app(settings)
    async with serve_app(app, lifespan="on") as address:
        container: Container = app.state.hub
        assert container.workers.feed is None  # every quote a stream gets crossed the Redis broker
        await eventually(lambda: container.engine.ready, within=WAIT)
        async with grpc_server(container, "127.0.0.1", 0) as port:
            yield Hub(container, address, f"127.0.0.1:{port}", broker_url, names)


@pytest.fixture
async def hub(schema_url: str, redis_url: str, names: Names) -> AsyncIterator[Hub]:
    async with services_hub(schema_url, redis_url, names) as h:
        yield h


class Quotes:
    """A source that yields the quotes it is given: FeedService.prime() stores and publishes
    them, as `hub feed` does."""

    def __init__(self, quotes: list[Quote]) -> None:
        self.quotes = quotes

    def snapshot(self) -> list[Quote]:
        return self.quotes

    async def run(self, sink: QuoteListener) -> None:  # pragma: no cover - prime() only
        for q in self.quotes:
            await sink(q)


@contextlib.asynccontextmanager
async def other_feed(
    broker_url: str, redis: Redis
) -> AsyncIterator[Callable[[Quote], Awaitable[None]]]:
    """Another engine (not the server's) on the same Redis broker, publishing through a feed
    into the Redis quote store; yields a function that stores and publishes one quote."""
    async with Engine(broker_url, authorizer=FakeAuthorizer(), kind_of=kind_of) as engine:
        await eventually(lambda: engine.ready, within=WAIT)

        async def send(q: Quote) -> None:
            await FeedService(Quotes([q]), RedisQuotes(redis), engine).prime()

        yield send


def priced(symbol: str, last: str, minute: int = 0) -> Quote:
    return msgspec.structs.replace(quote(symbol, last), timestamp=at(minute))


def at(minute: int) -> datetime:
    return datetime(2026, 11, 28, 15, minute, tzinfo=UTC)


async def next_update(stream: AsyncIterator[pb.MarketDataUpdate]) -> pb.MarketDataUpdate:
    async with asyncio.timeout(WAIT):
        return await anext(stream)


async def status_of(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async with asyncio.timeout(WAIT):
            await call
    return error.value


async def drain(stream: AsyncIterator[pb.MarketDataUpdate]) -> None:
    async for _ in stream:
        pass


# --- GetMarketData ------------------------------------------------------------------------------


async def test_get_market_data_prices_come_from_the_redis_quote_store(
    hub: Hub, redis: Redis
) -> None:
    n = hub.names
    store = RedisQuotes(redis)  # what `hub feed` writes: key hub:quote:<SYMBOL>
    await store.put(priced(n.stock, "123.45"))
    token, _ = await hub.login()
    async with MarketDataClient(hub.target, token, timeout=WAIT) as c:
        reply = await c.get_market_data([n.stock.lower(), "AAPL", n.quiet, "NOPE", n.stock])
        assert [m.symbol for m in reply.market_data] == [n.stock, "AAPL", n.quiet]
        assert list(reply.unknown_symbols) == ["NOPE"]
        stock, aapl, quiet = reply.market_data
        assert (stock.name, stock.category, stock.currency) == (
            f"Test {n.tag} stock",
            "stock",
            "USD",
        )
        assert (aapl.name, aapl.category) == ("Apple Inc.", "stock")  # the Postgres seed
        q = stock.quote
        assert (q.bid, q.ask, q.last, q.bid_size, q.ask_size) == (
            "123.41",
            "123.49",
            "123.45",
            "100",
            "200",
        )
        assert (q.open, q.high, q.low, q.prev_close) == ("123.45",) * 4
        assert (q.change, q.change_percent) == ("0.00", "0.00")
        assert q.timestamp.ToDatetime(tzinfo=UTC) == at(0)
        assert not quiet.HasField("quote")  # nothing in the store for it

        # Read through on every call: a new value in the store is the next answer.
        await store.put(priced(n.stock, "0.10", minute=1))
        [again] = (await c.get_market_data([n.stock])).market_data
        assert (again.quote.last, again.quote.bid) == ("0.10", "0.06")
        assert again.quote.timestamp.ToDatetime(tzinfo=UTC) == at(1)


async def test_get_market_data_status_codes(hub: Hub) -> None:
    token, _ = await hub.login()
    async with MarketDataClient(hub.target, token, timeout=WAIT) as c:
        unknown = await status_of(c.get_market_data(["NOPE", "ZZZZ9"]))
        assert unknown.code() is grpc.StatusCode.NOT_FOUND
        assert "NOPE" in (unknown.details() or "")
        for bad in ([], [" "], ["not a symbol!"], ["A" * 16], [f"S{i}" for i in range(101)]):
            invalid = await status_of(c.get_market_data(bad))
            assert invalid.code() is grpc.StatusCode.INVALID_ARGUMENT, bad
            assert invalid.details()
        # StreamMarketData answers the same, before it takes a stream slot.
        stream_unknown = await status_of(drain(c.stream([hub.names.stock, "NOPE"])))
        assert stream_unknown.code() is grpc.StatusCode.NOT_FOUND
        stream_invalid = await status_of(drain(c.stream(["not a symbol!"])))
        assert stream_invalid.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert hub.container.engine.stats()["connections"] == 0


# --- StreamMarketData across the Redis broker -----------------------------------------------------


async def test_stream_gets_what_another_engine_publishes_through_redis(
    hub: Hub, redis: Redis
) -> None:
    symbol = hub.names.stock
    token, _ = await hub.login()
    async with (
        other_feed(hub.broker_url, redis) as publish,
        MarketDataClient(hub.target, token, timeout=WAIT) as c,
    ):
        await publish(priced(symbol, "100.00"))
        stream = c.stream([symbol])
        first = await next_update(stream)  # the current quote first, from the broker's state
        assert (first.symbol, first.quote.last, first.quote.ask) == (symbol, "100.00", "100.04")
        seqs = [first.seq]
        for minute, last in enumerate(["100.01", "99.99", "250.5"], start=1):
            await publish(priced(symbol, last, minute))
            update = await next_update(stream)  # one at a time: nothing to conflate
            assert (update.symbol, update.quote.last) == (symbol, last)
            assert update.quote.timestamp.ToDatetime(tzinfo=UTC) == at(minute)
            seqs.append(update.seq)
        assert seqs == sorted(set(seqs))  # strictly increasing
        await cast(AsyncGenerator[pb.MarketDataUpdate, None], stream).aclose()
        # The unary call sees the same latest quote (the server's mirror or the store).
        [md] = (await c.get_market_data([symbol])).market_data
        assert md.quote.last == "250.5"


@contextlib.asynccontextmanager
async def hub_feed(schema_url: str, broker_url: str) -> AsyncIterator[None]:
    """`hub feed` as another OS process on the same Postgres schema and Redis broker prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=schema_url,
        HUB_REDIS_URL=broker_url,
        HUB_JWT_SECRET=SECRET,
        HUB_FEED_QPS="200",
        HUB_LOG_LEVEL="warning",
        # A small history (one session of minutes, a week of days): loaded in a moment.
        HUB_BACKFILL_MINUTE_DAYS="1",
        HUB_BACKFILL_DAILY_DAYS="5",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.entrypoints.cli",
        "feed",
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(START):
            while True:  # the banner comes after bootstrap primed every symbol's quote
                line = (await process.stdout.readline()).decode()
                assert line, f"hub feed exited ({process.returncode}):\n{''.join(output)}"
                output.append(line)
                if line.startswith("hub feed: publishing"):
                    break
        yield
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.communicate(), timeout=WAIT)
            except TimeoutError:
                process.kill()
                await process.communicate()


async def test_stream_gets_quotes_from_a_hub_feed_process(schema_url: str, hub: Hub) -> None:
    token, _ = await hub.login()
    seen: dict[str, list[pb.MarketDataUpdate]] = {"AAPL": [], "BTC-USD": []}
    async with (
        hub_feed(schema_url, hub.broker_url),
        MarketDataClient(hub.target, token, timeout=WAIT) as c,
    ):
        stream = c.stream(["AAPL", "BTC-USD"])
        async with asyncio.timeout(2 * WAIT):
            async for update in stream:
                seen[update.symbol].append(update)
                if all(len(updates) >= 3 for updates in seen.values()):
                    break
        await cast(AsyncGenerator[pb.MarketDataUpdate, None], stream).aclose()
        [md] = (await c.get_market_data(["AAPL"])).market_data
        assert md.HasField("quote")  # the feed process's quotes, via the mirror or the store
    for updates in seen.values():
        seqs = [u.seq for u in updates]
        assert seqs == sorted(set(seqs))
        for u in updates:
            assert Decimal(u.quote.bid) <= Decimal(u.quote.last) <= Decimal(u.quote.ask)
            assert Decimal(u.quote.bid) > 0


# --- authentication -------------------------------------------------------------------------------


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def test_streams_without_a_valid_token_are_unauthenticated(hub: Hub) -> None:
    token, _ = await hub.login()
    mine = claims(token)
    issued_an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    expired = JwtAccessTokens(
        SECRET, ttl=timedelta(seconds=60), issuer=mine["iss"], audience=mine["aud"]
    ).issue(uuid.UUID(mine["sub"]), Role.USER, issued_an_hour_ago, sid=uuid.UUID(mine["sid"]))
    other_secret = JwtAccessTokens(
        "another-secret-0123456789abcdefghij",
        ttl=timedelta(minutes=15),
        issuer=mine["iss"],
        audience=mine["aud"],
    ).issue(uuid.UUID(mine["sub"]), Role.USER, datetime.now(UTC))
    for bad in ("", "forged.token.value", expired, other_secret):
        async with MarketDataClient(hub.target, bad, timeout=WAIT) as c:
            stream = await status_of(drain(c.stream([hub.names.stock])))
            assert stream.code() is grpc.StatusCode.UNAUTHENTICATED, bad
            unary = await status_of(c.get_market_data([hub.names.stock]))
            assert unary.code() is grpc.StatusCode.UNAUTHENTICATED, bad
    async with MarketDataClient(hub.target, expired, timeout=WAIT) as c:
        error = await status_of(drain(c.stream([hub.names.stock])))
        assert "expired" in (error.details() or "")
    assert hub.container.engine.stats()["connections"] == 0


async def test_open_stream_ends_unauthenticated_at_expiry_and_on_logout(
    schema_url: str, redis_url: str, names: Names, redis: Redis
) -> None:
    async with services_hub(schema_url, redis_url, names, ttl=3) as h:
        async with other_feed(h.broker_url, redis) as publish:
            await publish(priced(names.stock, "42.00"))
        token, refresh = await h.login()
        async with MarketDataClient(h.target, token) as c:
            stream = c.stream([names.stock])
            assert (await next_update(stream)).quote.last == "42.00"  # open, then outlived
            expired = await status_of(drain(stream))
            assert expired.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "expired" in (expired.details() or "")
        token, refresh = await h.login()
        async with MarketDataClient(h.target, token) as c:
            stream = c.stream([names.stock])
            await next_update(stream)
            await h.container.auth.logout(refresh)
            revoked = await status_of(drain(stream))
            assert revoked.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "revoked" in (revoked.details() or "")
        await eventually(lambda: h.container.engine.stats()["connections"] == 0, within=WAIT)


# --- the per-user stream limit --------------------------------------------------------------------


async def test_the_17th_stream_of_a_user_is_resource_exhausted(hub: Hub, redis: Redis) -> None:
    symbol = hub.names.stock
    async with other_feed(hub.broker_url, redis) as publish:
        await publish(priced(symbol, "10.00"))  # so that every stream gets a first update
    token, _ = await hub.login()
    other, _ = await hub.login()
    engine = hub.container.engine
    assert engine.limits.max_connections_per_principal == LIMIT
    async with (
        MarketDataClient(hub.target, token, timeout=WAIT) as c,
        contextlib.AsyncExitStack() as stack,
    ):
        streams: list[AsyncGenerator[pb.MarketDataUpdate, None]] = []
        for _ in range(LIMIT - 1):
            stream = cast(AsyncGenerator[pb.MarketDataUpdate, None], c.stream([symbol]))
            stack.push_async_callback(stream.aclose)
            assert (await next_update(stream)).quote.last == "10.00"
            streams.append(stream)
        await stack.enter_async_context(client(hub.address, token))  # a WebSocket: slot 16
        assert engine.stats()["connections"] == LIMIT

        refused = await status_of(drain(c.stream([symbol])))
        assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"at most {LIMIT}" in (refused.details() or "")
        # Per user: another user still streams; unary calls take no slot.
        async with MarketDataClient(hub.target, other, timeout=WAIT) as o:
            theirs = cast(AsyncGenerator[pb.MarketDataUpdate, None], o.stream([symbol]))
            assert (await next_update(theirs)).quote.last == "10.00"
            await theirs.aclose()
        assert len((await c.get_market_data([symbol])).market_data) == 1

        await streams.pop().aclose()  # a slot freed is a slot to take again
        await eventually(lambda: engine.stats()["connections"] == LIMIT - 1, within=WAIT)
        again = cast(AsyncGenerator[pb.MarketDataUpdate, None], c.stream([symbol]))
        stack.push_async_callback(again.aclose)
        assert (await next_update(again)).symbol == symbol
    await eventually(lambda: engine.stats()["connections"] == 0, within=WAIT)
