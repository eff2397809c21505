"""Bars in services mode: `hub feed` (another OS process) backfills the history into
PostgreSQL and writes the live bars; `hub serve` (no feed in it) serves them over REST and
gRPC, and its WebSocket carries the forming bar through the Redis broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from hub.entrypoints.grpc.client import MarketDataClient
from tests.integration import test_grpc_services as services
from tests.integration.test_grpc_services import WAIT, Hub, hub_feed
from tests.unit.streaming.support import client

pytestmark = pytest.mark.integration

# The services wiring's fixtures: an API node on a schema and a broker prefix of its own.
names = services.names
hub = services.hub


async def test_bars_from_a_hub_feed_process(schema_url: str, hub: Hub) -> None:
    """`hub feed` backfills the history into PostgreSQL and writes the live bars; the API node
    (no feed in it) serves them over REST and gRPC, and its channel carries the forming bar."""
    token, _ = await hub.login()
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        hub_feed(schema_url, hub.broker_url),
        httpx.AsyncClient(base_url=f"http://{hub.address}", headers=headers) as http,
        MarketDataClient(hub.target, token, timeout=WAIT) as c,
        client(hub.address, token) as ws,
    ):
        await ws.subscribe("bars:AAPL")
        live = (await ws.expect("bar", within=2 * WAIT))["data"]  # through the Redis broker
        assert (live["symbol"], live["timeframe"]) == ("AAPL", "1Min")
        forming = datetime.fromisoformat(live["t"])

        async def newest() -> dict[str, Any]:  # the last bar, once the feed has written it
            async with asyncio.timeout(2 * WAIT):
                while True:
                    r = await http.get("/api/v1/instruments/AAPL/bars?limit=500")
                    assert r.status_code == 200, r.text
                    bars: list[dict[str, Any]] = r.json()["bars"]
                    if bars and datetime.fromisoformat(bars[-1]["t"]) >= forming:
                        return bars[-1]
                    await asyncio.sleep(0.2)

        await newest()
        days = (await http.get("/api/v1/instruments/AAPL/bars?timeframe=1Day")).json()["bars"]
        assert len(days) >= 5  # the backfilled week and today
        reply = await c.get_bars("AAPL", "1Day")
        assert [b.c for b in reply.bars][:-1] == [d["c"] for d in days][:-1]
        minutes = (await c.get_bars("AAPL", limit=1000)).bars
        assert len(minutes) > 390  # a whole session of history, then the live minutes
        times = [b.t.ToDatetime(tzinfo=UTC) for b in minutes]
        assert times[-1] >= forming
        # The live walk starts where the history ends: no jump between the two.
        first_live = next(i for i, t in enumerate(times) if t >= forming - timedelta(minutes=1))
        before, after = minutes[first_live - 1], minutes[first_live]
        assert abs(Decimal(after.o) - Decimal(before.c)) / Decimal(before.c) < Decimal("0.01")
