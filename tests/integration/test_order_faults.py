"""Failures of the real services while orders flow: nothing is lost, nothing fills twice, and
cash and positions reconcile to the cent afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.testclient import TestClient

from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.e2e.server import NO_HISTORY, hub_serve
from tests.http_suite import bearer, signup

pytestmark = pytest.mark.integration

SECRET = "fault-secret-0123456789abcdefghijklmnop"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, timeout=120, stdout=subprocess.DEVNULL)


def wait_rabbitmq_up() -> None:
    deadline = time.monotonic() + 120
    while (
        subprocess.run(
            ["rabbitmq-diagnostics", "-q", "check_port_connectivity"],
            capture_output=True,
            timeout=60,
        ).returncode
        != 0
    ):
        assert time.monotonic() < deadline, "RabbitMQ did not come back"
        time.sleep(1)


async def reconcile(schema_url: str, user_id: str, initial: Decimal) -> dict[str, Any]:
    """Recompute cash and positions from the executions; compare with the ledger."""
    conn = await asyncpg.connect(schema_url)
    try:
        fills = await conn.fetch(
            "SELECT e.order_id, e.side, e.qty, e.price FROM executions e"
            " JOIN orders o ON o.id = e.order_id WHERE o.user_id = $1",
            uuid.UUID(user_id),
        )
        per_order: dict[uuid.UUID, int] = {}
        cash, shares = initial, Decimal(0)
        for f in fills:
            per_order[f["order_id"]] = per_order.get(f["order_id"], 0) + 1
            sign = -1 if f["side"] == "buy" else 1
            cash += sign * f["qty"] * f["price"]
            shares -= sign * f["qty"]
        account = await conn.fetchrow(
            "SELECT cash, reserved_cash FROM accounts WHERE user_id = $1", uuid.UUID(user_id)
        )
        held = await conn.fetchval(
            "SELECT coalesce(sum(qty), 0) FROM positions WHERE user_id = $1", uuid.UUID(user_id)
        )
        statuses = await conn.fetch(
            "SELECT status, count(*) AS n FROM orders WHERE user_id = $1 GROUP BY status",
            uuid.UUID(user_id),
        )
        return {
            "fills_per_order": per_order,
            "expected_cash": cash,
            "cash": account["cash"],
            "reserved_cash": account["reserved_cash"],
            "expected_shares": shares,
            "shares": held,
            "statuses": {r["status"]: r["n"] for r in statuses},
        }
    finally:
        await conn.close()


def assert_reconciled(state: dict[str, Any], orders: int) -> None:
    assert state["statuses"] == {"filled": orders}, state["statuses"]
    assert len(state["fills_per_order"]) == orders
    assert set(state["fills_per_order"].values()) == {1}, "an order filled twice"
    assert state["cash"] == state["expected_cash"]
    assert state["reserved_cash"] == 0
    assert state["shares"] == state["expected_shares"]


@pytest.fixture
def client(
    schema_url: str, redis_url: str, amqp_url: str, amqp_prefix: str
) -> Iterator[TestClient]:
    settings = Settings(
        database_url=schema_url,
        redis_url=redis_url,
        amqp_url=amqp_url,
        amqp_prefix=amqp_prefix,
        jwt_secret=SECRET,
        feed_in_process=True,
        worker_in_process=True,
        feed_quotes_per_second=200,
        login_limit_per_client=1000,
        register_limit_per_client=1000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_orders_submitted_while_rabbitmq_is_down_all_fill_after_it_returns(
    client: TestClient, schema_url: str
) -> None:
    auth = bearer(signup(client))
    me = client.get("/api/v1/auth/me", headers=auth).json()
    body = {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "1"}
    rabbitmqctl("stop_app")
    try:
        ids = []
        for _ in range(10):
            r = client.post("/api/v1/orders", json=body, headers=auth)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        deadline = time.monotonic() + 15
        while (ready := client.get("/readyz")).status_code != 503:
            assert time.monotonic() < deadline, "readiness never reported RabbitMQ down"
            time.sleep(0.2)
        assert ready.json()["checks"]["rabbitmq"]["status"] == "down"
        time.sleep(1)
        pending = client.get("/api/v1/orders?status=open", headers=auth).json()["orders"]
        assert {o["id"] for o in pending} == set(ids)  # accepted, waiting, not lost
    finally:
        rabbitmqctl("start_app")
        wait_rabbitmq_up()
    deadline = time.monotonic() + 90
    while client.get("/api/v1/orders?status=open", headers=auth).json()["orders"]:
        assert time.monotonic() < deadline, "orders did not fill after RabbitMQ returned"
        time.sleep(0.5)
    state = asyncio.run(reconcile(schema_url, me["id"], Decimal("100000.00")))
    assert_reconciled(state, 10)
    assert client.get("/readyz").status_code == 200


def test_a_worker_killed_mid_order_loses_nothing_and_fills_once(
    schema_url: str, redis_url: str, amqp_url: str, amqp_prefix: str
) -> None:
    env = {
        "HUB_DATABASE_URL": schema_url,
        "HUB_REDIS_URL": redis_url,
        "HUB_AMQP_URL": amqp_url,
        "HUB_AMQP_PREFIX": amqp_prefix,
        "HUB_JWT_SECRET": SECRET,
        "HUB_FEED_IN_PROCESS": "true",
        "HUB_FEED_QPS": "200",
        "HUB_LOGIN_LIMIT_PER_CLIENT": "1000",
        "HUB_REGISTER_LIMIT_PER_CLIENT": "1000",
        "HUB_WORKER_PREFETCH": "50",
        **NO_HISTORY,
    }

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.entrypoints.cli", "worker"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    with hub_serve(env) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        email = f"k{uuid.uuid4().hex[:10]}@example.com"
        http.post("/api/v1/auth/register", json={"email": email, "password": "Str0ng-Enough!"})
        token = http.post(
            "/api/v1/auth/login", json={"email": email, "password": "Str0ng-Enough!"}
        ).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        me = http.get("/api/v1/auth/me", headers=auth).json()
        body = {"symbol": "MSFT", "side": "buy", "type": "market", "qty": "1"}
        orders = 120
        for _ in range(orders):
            assert http.post("/api/v1/orders", json=body, headers=auth).status_code == 202
        first = worker()
        deadline = time.monotonic() + 30
        # Kill it once it has filled some orders but not all: it holds unacked work then.
        while True:
            open_now = len(
                http.get("/api/v1/orders?status=open&limit=500", headers=auth).json()["orders"]
            )
            if open_now < orders - 5:
                break
            assert time.monotonic() < deadline, "the worker never started filling"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert http.get("/api/v1/orders?status=open&limit=500", headers=auth).json()["orders"], (
            "the worker finished before it could be killed: raise `orders`"
        )
        second = worker()
        try:
            deadline = time.monotonic() + 90
            while http.get("/api/v1/orders?status=open&limit=500", headers=auth).json()["orders"]:
                assert time.monotonic() < deadline, "orders stuck after the worker restarted"
                time.sleep(0.25)
        finally:
            second.terminate()
            second.wait(timeout=20)
    state = asyncio.run(reconcile(schema_url, me["id"], Decimal("100000.00")))
    assert_reconciled(state, orders)
