"""The /v2 routes as a client meets them: authentication, Alpaca's error shape and codes, user
isolation, the order request's spellings, and the filters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.alpaca_world import buy, embedded, key_headers, resting_limit, wait_for
from tests.http_suite import bearer, signup


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with embedded() as c:
        yield c


def assert_error(response: Any, status: int, code: int, reason: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]
    if reason is not None:
        assert body["reason"] == reason


def order(**fields: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", **fields}


# --- authentication -----------------------------------------------------------------------------


def test_credentials(client: TestClient) -> None:
    tokens = signup(client)
    keyed = key_headers(client, tokens)
    assert client.get("/v2/account", headers=keyed).status_code == 200
    assert client.get("/v2/account", headers=bearer(tokens)).status_code == 200  # a Hub token
    wrong = {**keyed, "APCA-API-SECRET-KEY": "not-the-secret"}
    for headers in ({}, {"APCA-API-KEY-ID": keyed["APCA-API-KEY-ID"]}, wrong):
        assert_error(client.get("/v2/account", headers=headers), 401, 40110000, "invalid_token")
    forged = {"Authorization": "Bearer a.b.c"}
    assert_error(client.get("/v2/orders", headers=forged), 401, 40110000)


def test_failed_key_checks_are_rate_limited() -> None:
    with embedded(feed_in_process=False) as fresh:  # its own limiter
        wrong = {"APCA-API-KEY-ID": "HK" + "A" * 18, "APCA-API-SECRET-KEY": "guess"}
        for _ in range(30):
            assert fresh.get("/v2/account", headers=wrong).status_code == 401
        r = fresh.get("/v2/account", headers=wrong)
        assert_error(r, 429, 42910000, "rate_limited")
        assert int(r.headers["retry-after"]) > 0


# --- routing ------------------------------------------------------------------------------------


def test_misses_are_alpaca_errors_and_never_redirects(client: TestClient) -> None:
    keyed = key_headers(client)
    assert_error(client.get("/v2/nothing", headers=keyed), 404, 40410000)
    assert_error(client.patch("/v2/orders", headers=keyed), 405, 40510000)
    r = client.get("/v2/orders/", headers=keyed, follow_redirects=False)
    assert_error(r, 404, 40410000)
    assert "location" not in r.headers
    assert_error(client.post("/v2/orders", content=b"{", headers=keyed), 400, 40010001)
    assert_error(client.post("/v2/orders", content=b"", headers=keyed), 400, 40010001)
    assert_error(client.post("/v2/orders", json=[1], headers=keyed), 422, 42210000)
    big = {**keyed, "Content-Length": "99999999"}
    assert_error(client.post("/v2/orders", content=b"{}", headers=big), 413, 41310000)


# --- orders -------------------------------------------------------------------------------------


def test_order_spellings_alpaca_clients_send(client: TestClient) -> None:
    keyed = key_headers(client)
    extras = {"extended_hours": False, "order_class": "simple", "position_intent": "buy_to_open"}
    for qty in (1, "1", 1.0):
        r = client.post("/v2/orders", json=order(qty=qty, **extras), headers=keyed)
        assert r.status_code == 200, r.text
        assert r.json()["qty"] == "1" and r.json()["client_order_id"]
    r = client.post("/v2/orders", json=order(symbol="BTC/USD", qty=1e-4), headers=keyed)
    assert r.status_code == 200, r.text
    assert r.json()["symbol"] == "BTC-USD" and r.json()["qty"] == "0.0001"
    assert r.json()["asset_class"] == "crypto"
    mine = order(client_order_id="mine-1", time_in_force="gtc")
    first = client.post("/v2/orders", json=mine, headers=keyed).json()
    assert first["client_order_id"] == "mine-1" and first["time_in_force"] == "gtc"
    r = client.post("/v2/orders", json=mine, headers=keyed)
    assert_error(r, 422, 42210000, "duplicate_client_order_id")
    found = client.get("/v2/orders:by_client_order_id?client_order_id=mine-1", headers=keyed)
    assert found.json()["id"] == first["id"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"notional": 100, "qty": None}, "invalid_order"),
        ({"order_class": "bracket"}, "invalid_order"),
        ({"type": "trailing_stop", "trail_percent": 1}, "invalid_order"),
        ({"take_profit": {"limit_price": 300}}, "invalid_order"),
        ({"side": None}, "invalid_order"),
        ({"side": "short"}, "invalid_order"),
        ({"time_in_force": "opg"}, "invalid_order"),
        ({"qty": None}, "invalid_order"),
        ({"qty": "1e2"}, "validation_error"),
        ({"qty": 1e300}, "number_out_of_range"),
        ({"qty": 0}, "invalid_quantity"),
        ({"qty": 1.5}, "invalid_quantity"),
        ({"symbol": "NOPE"}, "invalid_order"),
        ({"type": "limit"}, "invalid_order"),  # no limit_price
    ],
)
def test_refused_orders(client: TestClient, fields: dict[str, Any], reason: str) -> None:
    keyed = key_headers(client)
    body = {k: v for k, v in order(**fields).items() if v is not None}
    assert_error(client.post("/v2/orders", json=body, headers=keyed), 422, 42210000, reason)
    assert client.get("/v2/orders?status=all", headers=keyed).json() == []


def test_insufficient_buying_power_is_403(client: TestClient) -> None:
    keyed = key_headers(client)
    r = client.post("/v2/orders", json=order(qty=5000), headers=keyed)
    assert_error(r, 403, 40310000, "insufficient_buying_power")


def test_list_filters_and_cancel(client: TestClient) -> None:
    keyed = key_headers(client)
    filled = buy(client, keyed, "AAPL", 2)
    rest = resting_limit(client, keyed, filled["filled_avg_price"])

    def ids(query: str) -> list[str]:
        r = client.get(f"/v2/orders?{query}", headers=keyed)
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()]

    assert ids("") == [rest["id"]]  # open by default
    assert ids("status=all") == [rest["id"], filled["id"]]  # newest first
    assert ids("status=all&direction=asc") == [filled["id"], rest["id"]]
    assert ids("status=closed") == [filled["id"]]
    assert ids("status=all&limit=1") == [rest["id"]]
    assert ids("status=all&side=sell") == []
    assert ids("status=all&symbols=MSFT,BTC/USD") == []
    assert ids("status=all&symbols=aapl") == [rest["id"], filled["id"]]
    assert ids("status=all&after=2999-01-01T00:00:00Z") == []
    assert ids("status=all&until=2000-01-01") == []
    assert ids("status=all&nested=True") == [rest["id"], filled["id"]]  # nested is ignored
    for bad in ("status=bogus", "direction=up", "limit=0", "limit=501", "after=yesterday"):
        assert_error(client.get(f"/v2/orders?{bad}", headers=keyed), 422, 42210000)
    r = client.delete(f"/v2/orders/{rest['id']}", headers=keyed)
    assert r.status_code == 204 and r.content == b""
    wait_for(client, keyed, rest["id"], "canceled")
    r = client.delete(f"/v2/orders/{filled['id']}", headers=keyed)
    assert_error(r, 422, 42210000, "not_cancelable")
    r = client.delete("/v2/orders", headers=keyed)
    assert r.status_code == 207 and r.json() == []


# --- isolation ----------------------------------------------------------------------------------


def test_another_users_things_do_not_exist(client: TestClient) -> None:
    owner, stranger = key_headers(client), key_headers(client)
    filled = buy(client, owner, "AAPL", 1)
    rest = resting_limit(client, owner, filled["filled_avg_price"])
    lists = client.get("/v2/watchlists", headers=owner).json()
    for path in (
        f"/v2/orders/{filled['id']}",
        f"/v2/orders/{uuid.uuid4()}",
        "/v2/orders/not-a-uuid",
        "/v2/orders:by_client_order_id?client_order_id=rest-1",
        f"/v2/orders:by_client_order_id?client_order_id={filled['id']}",
        "/v2/positions/AAPL",
        f"/v2/watchlists/{lists[0]['id']}",
    ):
        assert_error(client.get(path, headers=stranger), 404, 40410000)
    assert_error(client.delete(f"/v2/orders/{rest['id']}", headers=stranger), 404, 40410000)
    assert_error(client.delete("/v2/positions/AAPL", headers=stranger), 404, 40410000)
    r = client.delete(f"/v2/watchlists/{lists[0]['id']}", headers=stranger)
    assert_error(r, 404, 40410000)
    for path in ("/v2/orders?status=all", "/v2/positions", "/v2/account/activities"):
        assert client.get(path, headers=stranger).json() == []
    assert client.delete("/v2/orders", headers=stranger).json() == []  # nothing of the owner's
    assert client.get(f"/v2/orders/{rest['id']}", headers=owner).json()["status"] == "new"
    # An order's id stands for its client_order_id only when it was placed without one.
    r = client.get(f"/v2/orders:by_client_order_id?client_order_id={rest['id']}", headers=owner)
    assert_error(r, 404, 40410000)


def test_an_api_v1_order_without_client_order_id(client: TestClient) -> None:
    tokens = signup(client)
    keyed = key_headers(client, tokens)
    body = {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "1"}
    placed = client.post("/api/v1/orders", json=body, headers=bearer(tokens)).json()
    shown = client.get(f"/v2/orders/{placed['id']}", headers=keyed).json()
    assert shown["client_order_id"] == placed["id"] and shown["submitted_at"]
    r = client.get(f"/v2/orders:by_client_order_id?client_order_id={placed['id']}", headers=keyed)
    assert r.json()["id"] == placed["id"]


# --- account, positions, assets, clock ----------------------------------------------------------


def test_account_moves_with_a_buy(client: TestClient) -> None:
    keyed = key_headers(client)
    before = client.get("/v2/account", headers=keyed).json()
    assert before["cash"] == before["equity"] == before["buying_power"] == "100000.00"
    filled = buy(client, keyed, "AAPL", 2)
    after = client.get("/v2/account", headers=keyed).json()
    cost = Decimal(filled["filled_avg_price"]) * 2
    assert Decimal(after["cash"]) == (Decimal("100000.00") - cost).quantize(Decimal("0.01"))
    assert Decimal(after["equity"]) == Decimal(after["cash"]) + Decimal(after["long_market_value"])


def test_closing_part_of_a_position(client: TestClient) -> None:
    keyed = key_headers(client)
    buy(client, keyed, "AAPL", 4)
    for bad in ("percentage=0", "percentage=101", "qty=1&percentage=5", "qty=abc"):
        assert_error(client.delete(f"/v2/positions/AAPL?{bad}", headers=keyed), 422, 42210000)
    sold = client.delete("/v2/positions/AAPL?percentage=50", headers=keyed).json()
    assert sold["side"] == "sell" and sold["qty"] == "2" and sold["type"] == "market"
    wait_for(client, keyed, sold["id"], "filled")
    assert client.get("/v2/positions/AAPL", headers=keyed).json()["qty"] == "2"
    r = client.delete("/v2/positions/AAPL?qty=5", headers=keyed)
    assert_error(r, 403, 40310000, "insufficient_shares")


def test_unknown_assets(client: TestClient) -> None:
    keyed = key_headers(client)
    assert_error(client.get("/v2/assets/NOPE", headers=keyed), 404, 40410000)
    assert_error(client.get(f"/v2/assets/{uuid.uuid4()}", headers=keyed), 404, 40410000)
    assert client.get("/v2/assets?exchange=NYSE", headers=keyed).json() == []


def test_exchange_hours_calendar_and_clock() -> None:
    with embedded(market_hours="exchange", feed_in_process=False) as fresh:
        keyed = key_headers(fresh)
        days = fresh.get("/v2/calendar?start=2026-03-06&end=2026-03-09", headers=keyed).json()
        assert days == [
            {
                "date": "2026-03-06",
                "open": "09:30",
                "close": "16:00",
                "session_open": "0930",
                "session_close": "1600",
            },
            {
                "date": "2026-03-09",
                "open": "09:30",
                "close": "16:00",
                "session_open": "0930",
                "session_close": "1600",
            },
        ]
        clock = fresh.get("/v2/clock", headers=keyed).json()
        assert clock["next_open"] and clock["next_close"] and isinstance(clock["is_open"], bool)
        for bad in ("start=2026-03-09&end=2026-03-06", "start=2020-01-01&end=2026-01-01"):
            r = fresh.get(f"/v2/calendar?{bad}", headers=keyed)
            assert_error(r, 422, 42210000)
        today = date.today().isoformat()
        assert fresh.get(f"/v2/calendar?end={today}", headers=keyed).status_code == 200
