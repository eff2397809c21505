"""gRPC MarketDataService against a real server in this process (embedded wiring)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.bootstrap import DEMO_EMAIL, DEMO_PASSWORD, Container, bootstrap
from hub.config import Settings
from hub.entrypoints.grpc.client import MarketDataClient
from hub.entrypoints.grpc.server import grpc_server


@dataclass
class Running:
    container: Container
    target: str
    token: str


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    settings = Settings(feed_quotes_per_second=400)
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
        with pytest.raises(grpc.aio.AioRpcError) as stream:
            async for _ in client.stream(["AAPL"]):
                pass
        assert stream.value.code() is grpc.StatusCode.UNAUTHENTICATED


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
