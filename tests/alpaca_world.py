"""Helpers for the /v2 tests: the embedded app, a user with an API key, a filled buy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any

from starlette.testclient import TestClient

from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.http_suite import bearer, signup


@contextmanager
def embedded(**settings: Any) -> Iterator[TestClient]:
    base = Settings(
        login_limit_per_client=1000, register_limit_per_client=1000, feed_quotes_per_second=200
    )
    with TestClient(create_app(replace(base, **settings))) as client:
        yield client


def key_headers(client: TestClient, tokens: dict[str, Any] | None = None) -> dict[str, str]:
    """A new user's (or the tokens' user's) API key, as alpaca-py sends it."""
    auth = bearer(tokens or signup(client))
    made = client.post("/api/v1/api-keys", json={"name": "alpaca"}, headers=auth).json()
    return {"APCA-API-KEY-ID": made["key_id"], "APCA-API-SECRET-KEY": made["secret"]}


def wait_for(
    client: TestClient, headers: dict[str, str], order_id: str, status: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        order: dict[str, Any] = client.get(f"/v2/orders/{order_id}", headers=headers).json()
        if order["status"] == status:
            return order
        assert time.monotonic() < deadline, order
        time.sleep(0.02)


def buy(client: TestClient, headers: dict[str, str], symbol: str = "AAPL", qty: Any = 2) -> Any:
    """A market buy, once filled."""
    body = {"symbol": symbol, "qty": qty, "side": "buy", "type": "market", "time_in_force": "day"}
    r = client.post("/v2/orders", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return wait_for(client, headers, r.json()["id"], "filled")


def resting_limit(client: TestClient, headers: dict[str, str], below: Any) -> Any:
    """A buy limit 5 % under `below` (inside the 10 % collar, far from the market)."""
    price = (Decimal(str(below)) * Decimal("0.95")).quantize(Decimal("0.01"))
    body = {
        "symbol": "AAPL",
        "qty": "1",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "limit_price": str(price),
        "client_order_id": "rest-1",
    }
    r = client.post("/v2/orders", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return wait_for(client, headers, r.json()["id"], "new")
