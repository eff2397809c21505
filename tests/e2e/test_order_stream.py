"""A dashboard's view: a WebSocket subscribed to `orders` sees every status of its orders, in
services mode with separate `hub serve`, `hub worker` and `hub feed` processes, and embedded."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.server import NO_HISTORY, RunningServer, hub_serve

pytestmark = pytest.mark.e2e

PASSWORD = "Str0ng-Enough!"


async def order_statuses(url: str) -> None:
    """Market buy: pending_new -> new -> filled; resting limit: new -> canceled."""
    email = f"ws{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert (
            await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        ).status_code == 201
        token = (
            await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        md = (await http.get("/api/v1/market-data?symbols=AAPL", headers=auth)).json()
        last = Decimal(md["data"][0]["quote"]["last"])
        ws_url = url.replace("http://", "ws://") + "/ws"
        async with websockets.connect(ws_url, additional_headers=auth) as ws:
            await ws.send(json.dumps({"action": "subscribe", "channels": ["orders"]}))
            await expect(ws, lambda m: m["type"] == "subscribed")
            market = (
                await http.post(
                    "/api/v1/orders",
                    headers=auth,
                    json={"symbol": "AAPL", "side": "buy", "type": "market", "qty": "2"},
                )
            ).json()
            seen = await statuses_until(ws, market["id"], "filled")
            assert seen == ["pending_new", "new", "filled"]

            limit_price = str((last * Decimal("0.95")).quantize(Decimal("0.01")))
            resting = (
                await http.post(
                    "/api/v1/orders",
                    headers=auth,
                    json={
                        "symbol": "AAPL",
                        "side": "buy",
                        "type": "limit",
                        "qty": "1",
                        "limit_price": limit_price,
                        "time_in_force": "gtc",
                    },
                )
            ).json()
            assert await statuses_until(ws, resting["id"], "new") == ["pending_new", "new"]
            r = await http.delete(f"/api/v1/orders/{resting['id']}", headers=auth)
            assert r.status_code == 202
            assert await statuses_until(ws, resting["id"], "canceled") == [
                "pending_cancel",
                "canceled",
            ]


async def expect(ws: Any, match: Any, seconds: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            for message in json.loads(await ws.recv()):
                if match(message):
                    return dict(message)


async def statuses_until(ws: Any, order_id: str, final: str, seconds: float = 15) -> list[str]:
    seen: list[str] = []
    async with asyncio.timeout(seconds):
        while not seen or seen[-1] != final:
            for message in json.loads(await ws.recv()):
                if message["type"] == "order" and message["data"]["id"] == order_id:
                    seen.append(message["data"]["status"])
    return seen


def test_embedded() -> None:
    with hub_serve(NO_HISTORY) as server:
        asyncio.run(order_statuses(server.url))


@contextmanager
def services(
    schema_url: str, redis_url: str, amqp_url: str, prefix: str
) -> Iterator[RunningServer]:
    env = {
        "HUB_DATABASE_URL": schema_url,
        "HUB_REDIS_URL": redis_url,
        "HUB_AMQP_URL": amqp_url,
        "HUB_AMQP_PREFIX": prefix,
        "HUB_JWT_SECRET": "e2e-secret-0123456789abcdefghijklmnop",
        "HUB_FEED_QPS": "100",
        **NO_HISTORY,
    }
    full_env = {**os.environ, **env}
    helpers = [
        subprocess.Popen(
            [sys.executable, "-m", "hub.entrypoints.cli", command],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in ("feed", "worker")
    ]
    try:
        with hub_serve(env) as server:
            yield server
    finally:
        for process in helpers:
            process.terminate()
        for process in helpers:
            try:
                assert process.wait(timeout=20) in (0, -15), "did not stop cleanly"
            finally:
                if process.poll() is None:
                    process.kill()


@pytest.mark.integration
def test_services_mode_processes(
    schema_url: str, redis_url: str, amqp_url: str, amqp_prefix: str
) -> None:
    with services(schema_url, redis_url, amqp_url, amqp_prefix) as server:
        asyncio.run(order_statuses(server.url))
