"""gRPC MarketDataService (quotes, streams, bars) against a real server in this process
(embedded wiring)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.bootstrap import DEMO_EMAIL, DEMO_PASSWORD, Container, bootstrap
from hub.config import Settings
from hub.domain.bars import Timeframe
from hub.entrypoints.grpc.client import MarketDataClient
from hub.entrypoints.grpc.market_data import bar_message
from hub.entrypoints.grpc.server import grpc_server
from hub.services.views import BarView


@dataclass
class Running:
    container: Container
    target: str
    token: str


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    # A small history (one session of minutes, a week of days) loads in a moment.
    settings = Settings(feed_quotes_per_second=400, backfill_minute_days=1, backfill_daily_days=5)
    async with bootstrap(settings) as container, grpc_server(container, "127.0.0.1", 0) as port:
        pair = await container.auth.login(DEMO_EMAIL, DEMO_PASSWORD, "test")
        yield Running(container, f"127.0.0.1:{port}", pair.access_token)


async def test_unary_batch(running: Running) -> None:
    async with MarketDataClient(running.target, running.token) as client:
        reply = await client.get_market_data(["AAPL", "voo", "NOPE"])
    assert [m.symbol for m in reply.market_data] == ["AAPL", "VOO"]
    assert list(reply.unknown_symbols) == ["NOPE"]
    quote = reply.market_data[0].quote
    assert Decimal(quote.bid) < Decimal(quote.ask)
    assert quote.timestamp.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)


async def test_status_codes(running: Running) -> None:
    async with MarketDataClient(running.target, running.token) as client:
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await client.get_market_data([])
        assert empty.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await client.get_market_data(["NOPE"])
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("token", ["", "forged.token.value"])
async def test_unauthenticated(running: Running, token: str) -> None:
    async with MarketDataClient(running.target, token) as client:
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await client.get_market_data(["AAPL"])
        assert unary.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as bars:
            await client.get_bars("AAPL")
        assert bars.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as stream:
            async for _ in client.stream(["AAPL"]):
                pass
        assert stream.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def history_loaded(running: Running) -> None:
    feed = running.container.workers.feed
    assert feed is not None and feed.bars is not None
    async with asyncio.timeout(20):
        while not feed.bars.live:  # noqa: ASYNC110 - the history loads in the background
            await asyncio.sleep(0.05)


async def test_get_bars_answers_as_the_rest_route(running: Running) -> None:
    await history_loaded(running)
    market_data = running.container.market_data
    async with MarketDataClient(running.target, running.token) as client:
        reply = await client.get_bars("aapl")
        assert (reply.symbol, reply.timeframe, len(reply.bars)) == ("AAPL", "1Min", 100)
        times = [b.t.ToDatetime(tzinfo=UTC) for b in reply.bars]
        assert times == sorted(set(times))
        for b in reply.bars:
            assert Decimal(b.l) <= min(Decimal(b.o), Decimal(b.c)) <= Decimal(b.h)
            assert Decimal(b.v) >= 0 and b.n >= 0 and Decimal(b.vw) > 0
        days = await client.get_bars("AAPL", "1Day", limit=3)
        assert len(days.bars) == 3 and days.timeframe == "1Day"
        start, end = times[10], times[20]
        ranged = await client.get_bars("AAPL", start=start, end=end)
        expected = await market_data.bars("AAPL", Timeframe.MINUTE, start=start, end=end)
        assert [bar_message(BarView.of(b)) for b in expected.bars] == list(ranged.bars)
        assert len(ranged.bars) == 11  # both ends inclusive


async def test_get_bars_status_codes(running: Running) -> None:
    now = datetime.now(UTC)
    async with MarketDataClient(running.target, running.token) as client:
        for call in (
            client.get_bars("AAPL", "2Min"),
            client.get_bars("AAPL", limit=-1),
            client.get_bars("AAPL", limit=10001),
            client.get_bars("AAPL", start=now, end=now - timedelta(minutes=1)),
            client.get_bars(""),
            client.get_bars("AA PL"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await call
            assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await client.get_bars("NOPE")
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


async def test_stream_receives_live_updates(running: Running) -> None:
    seen: dict[str, list[int]] = {"AAPL": [], "BTC-USD": []}
    async with MarketDataClient(running.target, running.token) as client:
        async for update in client.stream(["AAPL", "BTC-USD"]):
            seen[update.symbol].append(update.seq)
            assert Decimal(update.quote.last) > 0
            if all(len(s) >= 3 for s in seen.values()):
                break
    for seqs in seen.values():
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)


async def test_health_is_open_and_serving(running: Running) -> None:
    async with grpc.aio.insecure_channel(running.target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
