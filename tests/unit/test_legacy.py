"""The original Go server's routes on the embedded app: same paths, same JSON shapes (key sets and
JSON types compared field by field with the original's structs), errors as problem JSON."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.config import Settings
from hub.domain.orders import OrderStatus, OrderType
from hub.entrypoints.http.app import create_app
from hub.entrypoints.http.legacy import LEGACY_STATUS, LEGACY_TYPE, ORDER_TYPE
from tests.http_suite import PASSWORD, assert_problem, bearer, email, signup

Headers = dict[str, str]

# The original's response structs, as key sets.
SUBMIT_KEYS = {"order_id", "status", "message", "estimated_price", "market_price", "submitted_at"}
DETAIL_KEYS = {
    "order_id",
    "user_id",
    "symbol",
    "order_type",
    "order_side",
    "quantity",
    "status",
    "created_at",
    "updated_at",
    "estimated_value",
}
DETAIL_OPTIONAL = {
    "price",
    "executed_at",
    "execution_price",
    "market_price_at_submission",
    "market_data_timestamp",
    "execution_value",
}
EXECUTED_KEYS = DETAIL_KEYS | {"executed_at", "execution_price", "execution_value"}
STATUS_KEYS = {"order_id", "status", "message", "updated_at", "can_cancel"}
CANCEL_KEYS = {"order_id", "status", "message", "updated_at"}
AGGREGATION_KEYS = {"totalInvested", "currentTotal", "positionAggregation"}
CATEGORY_KEYS = {"category", "totalInvested", "currentTotal", "pnl", "pnlPercentage", "assets"}
ASSET_KEYS = {"symbol", "quantity", "averagePrice", "currentPrice", "category"}
MARKET_KEYS = {"Symbol", "Name", "LastQuote", "Category"}
LEGACY_STATUSES = {"PENDING", "PROCESSING", "EXECUTED", "FAILED", "CANCELLED"}

# Every authenticated legacy route, with a method the original served it on.
AUTHENTICATED = [
    ("GET", "/getBalance"),
    ("POST", "/getBalance"),
    ("GET", "/getAucAggregation"),
    ("GET", "/getPortfolioSummary"),
    ("GET", "/getMarketData?symbols=AAPL"),
    ("GET", "/getWatchlist"),
    ("POST", "/orders"),
    ("GET", "/orders/history"),
    ("GET", f"/orders/{uuid.uuid4()}"),
    ("GET", f"/orders/{uuid.uuid4()}/status"),
    ("PUT", f"/orders/{uuid.uuid4()}/cancel"),
]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(feed_quotes_per_second=200))) as client:
        yield client


@pytest.fixture
def auth(client: TestClient) -> Headers:
    return bearer(signup(client))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def assert_numbers(body: dict[str, Any], *keys: str) -> None:
    for key in keys:
        assert is_number(body[key]), (key, body[key])


def literals(response: Any) -> Any:
    """The JSON body with every number kept as its literal text ("100.50" stays "100.50")."""
    return json.loads(response.text, parse_float=str, parse_int=str)


def assert_places(body: dict[str, Any], places: int, *keys: str) -> None:
    """Each key is a JSON number written with exactly `places` decimals (docs/legacy.md)."""
    for key in keys:
        assert re.fullmatch(rf"-?\d+\.\d{{{places}}}", body[key]), (key, body[key])


def assert_rfc3339(*values: Any) -> None:
    for value in values:
        assert isinstance(value, str)
        assert datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def last_price(client: TestClient, auth: Headers, symbol: str) -> Decimal:
    (row,) = client.get(f"/getMarketData?symbols={symbol}", headers=auth).json()
    return Decimal(str(row["LastQuote"]))


def submit(client: TestClient, auth: Headers, **fields: Any) -> Any:
    body = {"order_type": "MARKET", "order_side": "BUY", "quantity": 1, **fields}
    return client.post("/orders", json=body, headers=auth)


def submitted(client: TestClient, auth: Headers, **fields: Any) -> str:
    r = submit(client, auth, **fields)
    assert r.status_code == 202, r.text
    order_id: str = r.json()["order_id"]
    return order_id


def wait_for(
    client: TestClient, auth: Headers, order_id: str, *statuses: str, timeout: float = 3.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/orders/{order_id}", headers=auth).json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.01)


def resting_limit(client: TestClient, auth: Headers, symbol: str = "AAPL") -> str:
    """A buy limit 5 % under the market: inside the collar, far from being filled."""
    price = (last_price(client, auth, symbol) * Decimal("0.95")).quantize(Decimal("0.01"))
    return submitted(client, auth, symbol=symbol, order_type="LIMIT", price=float(price))


def legacy_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """Problem JSON that also carries the original's `error` and `message` keys."""
    body = assert_problem(response, status, code)
    assert isinstance(body["error"], str) and body["error"]
    assert body["message"] == body["detail"]
    return body


# --- mappings ---------------------------------------------------------------------------------


def test_every_status_and_type_has_a_legacy_name() -> None:
    assert set(LEGACY_STATUS) == set(OrderStatus)
    assert set(LEGACY_STATUS.values()) == LEGACY_STATUSES
    assert LEGACY_STATUS[OrderStatus.PENDING_NEW] == "PENDING"
    assert LEGACY_STATUS[OrderStatus.FILLED] == "EXECUTED"
    assert LEGACY_STATUS[OrderStatus.CANCELED] == "CANCELLED"
    assert {LEGACY_STATUS[s] for s in OrderStatus if s.is_terminal} == {
        "EXECUTED",
        "FAILED",
        "CANCELLED",
    }
    assert set(LEGACY_TYPE) == set(OrderType)
    assert set(ORDER_TYPE) == {"MARKET", "LIMIT", "STOP_LOSS", "STOP_LIMIT"}
    assert all(ORDER_TYPE[LEGACY_TYPE[t]] is t for t in OrderType)


# --- auth -------------------------------------------------------------------------------------


def test_every_route_needs_a_token(client: TestClient) -> None:
    for header in (None, "Bearer garbage", "Basic dXNlcjpwYXNz"):
        headers = {"Authorization": header} if header else {}
        for method, path in AUTHENTICATED:
            r = client.request(method, path, headers=headers)
            assert_problem(r, 401, "invalid_token")


def test_login_any_method_gives_a_usable_token(client: TestClient) -> None:
    address = email()
    signup(client, address)
    for method in ("POST", "GET", "PUT"):
        r = client.request(method, "/login", json={"email": address, "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"token"}
        token = r.json()["token"]
        balance = client.get("/getBalance", headers={"Authorization": f"Bearer {token}"})
        assert balance.status_code == 200
    # Unknown fields are ignored, as Go's decoder did.
    r = client.post("/login", json={"email": address, "password": PASSWORD, "remember": True})
    assert r.status_code == 200


def test_login_errors(client: TestClient) -> None:
    address = email()
    signup(client, address)
    r = client.post("/login", json={"email": address, "password": "Wrong-pass-1!"})
    assert_problem(r, 401, "invalid_credentials")
    r = client.post("/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert_problem(r, 401, "invalid_credentials")
    for raw, code in [
        (b"", "malformed_json"),
        (b"{not json", "malformed_json"),
        (b"[]", "validation_error"),
        (b'{"email": "a@b.co"}', "validation_error"),
        (b'{"email": 5, "password": "x"}', "validation_error"),
    ]:
        assert_problem(client.post("/login", content=raw), 400, code)


# --- balance, aggregation, summary, market data, watchlist ------------------------------------


def test_balance_is_a_number_with_two_decimals(client: TestClient, auth: Headers) -> None:
    for method in ("GET", "POST", "DELETE"):
        r = client.request(method, "/getBalance", headers=auth)
        assert r.status_code == 200
        assert r.json() == {"availableBalance": 100000.0}
        assert r.content == b'{"availableBalance":100000.00}'


def test_empty_portfolio(client: TestClient, auth: Headers) -> None:
    r = client.get("/getAucAggregation", headers=auth)
    assert_places(literals(r), 2, "totalInvested", "currentTotal")
    aggregation = r.json()
    assert aggregation == {"totalInvested": 0, "currentTotal": 0, "positionAggregation": []}
    summary = client.post("/getPortfolioSummary", headers=auth).json()
    assert set(summary) == {"Balance", "TotalPortfolio", "LastUpdatedDate", "PositionAggregation"}
    assert summary["Balance"] == {"availableBalance": 100000.0}
    assert summary["TotalPortfolio"] == 100000.0
    assert summary["PositionAggregation"] == aggregation
    assert_rfc3339(summary["LastUpdatedDate"])


def test_positions_are_aggregated_by_category(client: TestClient, auth: Headers) -> None:
    buys = {"AAPL": 2, "VOO": 1, "ETH-USD": 1}
    ids = [submitted(client, auth, symbol=s, quantity=q) for s, q in buys.items()]
    fills = [wait_for(client, auth, i, "EXECUTED") for i in ids]
    spent = sum(Decimal(str(f["execution_value"])) for f in fills)

    balance = client.get("/getBalance", headers=auth).json()["availableBalance"]
    assert Decimal(str(balance)) == Decimal("100000.00") - spent

    r = client.get("/getAucAggregation", headers=auth)
    aggregation = r.json()
    assert set(aggregation) == AGGREGATION_KEYS
    # Money with 2 decimals, percentages 2, average prices 4: the literal text, not just a number.
    exact = literals(r)
    assert_places(exact, 2, "totalInvested", "currentTotal")
    for group in exact["positionAggregation"]:
        assert_places(group, 2, "totalInvested", "currentTotal", "pnl", "pnlPercentage")
        for asset in group["assets"]:
            assert_places(asset, 4, "averagePrice")
            assert_places(asset, 2, "currentPrice")
            assert re.fullmatch(r"\d+", asset["quantity"])
    assert_numbers(aggregation, "totalInvested", "currentTotal")
    assert Decimal(str(aggregation["totalInvested"])) == spent
    groups = aggregation["positionAggregation"]
    assert [g["category"] for g in groups] == [1, 2, 3]
    for group, (symbol, qty) in zip(groups, buys.items(), strict=True):
        assert set(group) == CATEGORY_KEYS
        assert_numbers(group, "totalInvested", "currentTotal", "pnl", "pnlPercentage")
        (asset,) = group["assets"]
        assert set(asset) == ASSET_KEYS
        assert_numbers(asset, "quantity", "averagePrice", "currentPrice")
        assert (asset["symbol"], asset["quantity"], asset["category"]) == (
            symbol,
            qty,
            group["category"],
        )
        pnl = Decimal(str(group["currentTotal"])) - Decimal(str(group["totalInvested"]))
        assert Decimal(str(group["pnl"])) == pnl

    r = client.get("/getPortfolioSummary", headers=auth)
    assert_places(literals(r), 2, "TotalPortfolio")
    assert_places(literals(r)["Balance"], 2, "availableBalance")
    summary = r.json()
    assert summary["Balance"] == {"availableBalance": balance}
    current = Decimal(str(summary["PositionAggregation"]["currentTotal"]))
    assert Decimal(str(summary["TotalPortfolio"])) == Decimal(str(balance)) + current
    assert set(summary["PositionAggregation"]) == AGGREGATION_KEYS
    assert_rfc3339(summary["LastUpdatedDate"])


def test_watchlist_is_the_first_watchlist(client: TestClient, auth: Headers) -> None:
    rows = client.get("/getWatchlist", headers=auth).json()
    (default,) = client.get("/api/v1/watchlists", headers=auth).json()
    assert [r["Symbol"] for r in rows] == default["symbols"]
    assert all(set(r) == MARKET_KEYS for r in rows)
    assert all(is_number(r["LastQuote"]) and isinstance(r["Category"], int) for r in rows)
    assert {r["Symbol"]: r["Category"] for r in rows}["VOO"] == 2

    one = f"/api/v1/watchlists/{default['id']}"
    client.post("/api/v1/watchlists", json={"name": "second", "symbols": ["DIS"]}, headers=auth)
    client.patch(one, json={"symbols": ["VBR", "AMZN"]}, headers=auth)
    rows = client.put("/getWatchlist", headers=auth).json()
    assert [(r["Symbol"], r["Category"]) for r in rows] == [("VBR", 2), ("AMZN", 1)]
    client.patch(one, json={"symbols": []}, headers=auth)
    assert client.get("/getWatchlist", headers=auth).json() == []


def test_get_market_data_still_works(client: TestClient, auth: Headers) -> None:
    rows = client.post("/getMarketData?symbols=VOO,DIS", headers=auth).json()
    assert [(r["Symbol"], r["Category"]) for r in rows] == [("VOO", 2), ("DIS", 1)]
    assert all(set(r) == MARKET_KEYS for r in rows)
    assert_problem(client.get("/getMarketData", headers=auth), 422, "validation_error")


# --- orders -----------------------------------------------------------------------------------


def test_market_order_submit_fill_status_and_detail(client: TestClient, auth: Headers) -> None:
    r = submit(client, auth, symbol="aapl", quantity=3)
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == SUBMIT_KEYS
    assert body["status"] == "PENDING" and isinstance(body["message"], str)
    assert_numbers(body, "estimated_price", "market_price")
    assert_rfc3339(body["submitted_at"])
    uuid.UUID(body["order_id"])

    detail = wait_for(client, auth, body["order_id"], "EXECUTED")
    assert set(detail) == EXECUTED_KEYS  # a market order has no price
    assert (detail["symbol"], detail["order_type"], detail["order_side"]) == (
        "AAPL",
        "MARKET",
        "BUY",
    )
    assert detail["quantity"] == 3
    assert_numbers(detail, "quantity", "estimated_value", "execution_price", "execution_value")
    assert all(isinstance(detail[k], str) for k in ("order_id", "user_id", "symbol", "status"))
    assert_rfc3339(detail["created_at"], detail["updated_at"], detail["executed_at"])
    value = Decimal(str(detail["execution_price"])) * 3
    assert Decimal(str(detail["execution_value"])) == value.quantize(Decimal("0.01"))

    status = client.get(f"/orders/{body['order_id']}/status", headers=auth).json()
    assert set(status) == STATUS_KEYS
    assert status["status"] == "EXECUTED" and status["can_cancel"] is False
    assert_rfc3339(status["updated_at"])

    r = client.put(f"/orders/{body['order_id']}/cancel", headers=auth)
    assert "cannot be cancelled" in legacy_problem(r, 400, "not_cancelable")["message"]


def test_limit_order_rests_and_cancels(client: TestClient, auth: Headers) -> None:
    order_id = resting_limit(client, auth)
    detail = wait_for(client, auth, order_id, "PROCESSING")
    assert set(detail) == DETAIL_KEYS | {"price"}
    assert detail["order_type"] == "LIMIT" and is_number(detail["price"])
    expected = Decimal(str(detail["price"])) * 1
    assert Decimal(str(detail["estimated_value"])) == expected
    status = client.get(f"/orders/{order_id}/status", headers=auth).json()
    assert (status["status"], status["can_cancel"]) == ("PROCESSING", True)

    r = client.put(f"/orders/{order_id}/cancel", headers=auth)
    assert r.status_code == 200, r.text
    cancel = r.json()
    assert set(cancel) == CANCEL_KEYS
    assert cancel["order_id"] == order_id and cancel["status"] in {"PROCESSING", "CANCELLED"}
    assert_rfc3339(cancel["updated_at"])
    wait_for(client, auth, order_id, "CANCELLED")
    status = client.get(f"/orders/{order_id}/status", headers=auth).json()
    assert (status["status"], status["can_cancel"]) == ("CANCELLED", False)
    legacy_problem(client.put(f"/orders/{order_id}/cancel", headers=auth), 400, "not_cancelable")
    # The cancel released the reservation.
    assert client.get("/getBalance", headers=auth).json() == {"availableBalance": 100000.0}


@pytest.mark.parametrize(
    ("legacy", "kind", "has_limit", "has_stop"),
    [
        ("LIMIT", "limit", True, False),
        ("STOP_LOSS", "stop", False, True),
        ("STOP_LIMIT", "stop_limit", True, True),
    ],
)
def test_priced_types_map_onto_ours(
    client: TestClient, auth: Headers, legacy: str, kind: str, has_limit: bool, has_stop: bool
) -> None:
    # A buy stop above the market does not trigger; a buy limit under it does not fill.
    factor = Decimal("1.05") if has_stop else Decimal("0.95")
    price = (last_price(client, auth, "MSFT") * factor).quantize(Decimal("0.01"))
    order_id = submitted(client, auth, symbol="MSFT", order_type=legacy, price=float(price))
    ours = client.get(f"/api/v1/orders/{order_id}", headers=auth).json()
    assert ours["type"] == kind
    assert ours["limit_price"] == (str(price) if has_limit else None)
    assert ours["stop_price"] == (str(price) if has_stop else None)
    detail = client.get(f"/orders/{order_id}", headers=auth).json()
    assert detail["order_type"] == legacy
    assert Decimal(str(detail["price"])) == price


def test_idempotency_key_replays_the_order(client: TestClient, auth: Headers) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"symbol": "DIS", "order_type": "MARKET", "order_side": "BUY", "quantity": 1}
    first = client.post("/orders", json=body, headers={**auth, **key}).json()
    again = client.post("/orders", json=body, headers={**auth, **key}).json()
    assert again["order_id"] == first["order_id"]
    assert client.get("/orders/history", headers=auth).json()["total"] == 1


def order_json(**fields: Any) -> bytes:
    body = {"symbol": "AAPL", "order_type": "MARKET", "order_side": "BUY", "quantity": 1}
    return json.dumps({k: v for k, v in {**body, **fields}.items() if v is not None}).encode()


BAD_ORDERS = [
    (b"", "malformed_json"),
    (b"{not json", "malformed_json"),
    (b"[]", "validation_error"),
    (b'{"symbol": "AAPL"}', "validation_error"),
    (order_json(symbol=5), "validation_error"),
    (order_json(quantity="x"), "validation_error"),
    (order_json(symbol=" "), "invalid_order"),
    (order_json(order_type="FOK"), "invalid_order"),
    (order_json(order_type="market"), "invalid_order"),
    (order_json(order_side="HOLD"), "invalid_order"),
    (order_json(quantity=0), "invalid_order"),
    (order_json(quantity=-2), "invalid_order"),
    (order_json(order_type="LIMIT"), "invalid_order"),
    (order_json(order_type="STOP_LOSS", order_side="SELL"), "invalid_order"),
    (order_json(price=10), "invalid_order"),
    (order_json(order_type="LIMIT", price=-1), "invalid_order"),
]


def test_bad_orders_are_400(client: TestClient, auth: Headers) -> None:
    for body, code in BAD_ORDERS:
        legacy_problem(client.post("/orders", content=body, headers=auth), 400, code)
    assert client.get("/orders/history", headers=auth).json()["total"] == 0


PRE_TRADE_ERRORS: list[tuple[dict[str, Any], int, str]] = [
    ({"symbol": "BTC-USD", "quantity": 10}, 403, "insufficient_buying_power"),
    ({"symbol": "AAPL", "order_side": "SELL"}, 403, "insufficient_shares"),
    ({"symbol": "NOPE"}, 422, "invalid_order"),
    ({"symbol": "AAPL", "quantity": 1.5}, 422, "invalid_quantity"),
    ({"symbol": "AAPL", "order_type": "LIMIT", "price": 1}, 422, "price_outside_collar"),
]


def test_pre_trade_errors_keep_their_status(client: TestClient, auth: Headers) -> None:
    for fields, status, code in PRE_TRADE_ERRORS:
        legacy_problem(submit(client, auth, **fields), status, code)
    assert client.get("/getBalance", headers=auth).json() == {"availableBalance": 100000.0}


def test_other_users_orders_are_404(client: TestClient, auth: Headers) -> None:
    order_id = resting_limit(client, auth)
    other = bearer(signup(client))
    for method, path in [
        ("GET", f"/orders/{order_id}"),
        ("GET", f"/orders/{order_id}/status"),
        ("PUT", f"/orders/{order_id}/cancel"),
        ("GET", f"/orders/{uuid.uuid4()}"),
        ("GET", "/orders/not-a-uuid"),
        ("GET", "/orders/not-a-uuid/status"),
        ("PUT", "/orders/not-a-uuid/cancel"),
    ]:
        legacy_problem(client.request(method, path, headers=other), 404, "not_found")
    assert client.get("/orders/history", headers=other).json()["total"] == 0
    # Still working for its owner: the other user's cancel did nothing.
    status = client.get(f"/orders/{order_id}/status", headers=auth).json()
    assert status["can_cancel"] is True


def test_order_routes_keep_their_methods(client: TestClient, auth: Headers) -> None:
    order_id = resting_limit(client, auth)
    assert_problem(client.delete(f"/orders/{order_id}", headers=auth), 405, "method_not_allowed")
    assert_problem(
        client.get(f"/orders/{order_id}/cancel", headers=auth), 405, "method_not_allowed"
    )
    assert_problem(client.get("/orders", headers=auth), 405, "method_not_allowed")


def test_history_pages(client: TestClient, auth: Headers) -> None:
    empty = client.get("/orders/history", headers=auth).json()
    assert empty == {"orders": [], "total": 0, "page": 1, "limit": 20}
    ids = [resting_limit(client, auth) for _ in range(5)]
    newest_first = ids[::-1]

    pages = [
        client.get(f"/orders/history?page={page}&limit=2", headers=auth).json()
        for page in (1, 2, 3, 4)
    ]
    assert [len(p["orders"]) for p in pages] == [2, 2, 1, 0]
    assert all((p["total"], p["limit"]) == (5, 2) for p in pages)
    assert [p["page"] for p in pages] == [1, 2, 3, 4]
    assert [o["order_id"] for p in pages for o in p["orders"]] == newest_first
    for order in pages[0]["orders"]:
        assert DETAIL_KEYS <= set(order) <= DETAIL_KEYS | DETAIL_OPTIONAL
        assert order["status"] in LEGACY_STATUSES

    everything = client.get("/orders/history", headers=auth).json()
    assert (everything["total"], everything["page"], everything["limit"]) == (5, 1, 20)
    assert [o["order_id"] for o in everything["orders"]] == newest_first
    assert client.get("/orders/history?limit=100", headers=auth).json()["limit"] == 100


def test_bad_history_params_are_400(client: TestClient, auth: Headers) -> None:
    for query in ("page=0", "page=-1", "page=x", "page=1.5", "limit=0", "limit=101", "limit="):
        r = client.get(f"/orders/history?{query}", headers=auth)
        legacy_problem(r, 400, "validation_error")


def test_openapi_documents_the_legacy_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [
        ("/login", "post"),
        ("/getBalance", "get"),
        ("/getAucAggregation", "get"),
        ("/getPortfolioSummary", "get"),
        ("/getWatchlist", "get"),
        ("/orders", "post"),
        ("/orders/history", "get"),
        ("/orders/{order_id}", "get"),
        ("/orders/{order_id}/status", "get"),
        ("/orders/{order_id}/cancel", "put"),
    ]:
        assert paths[path][method]["tags"] == ["legacy"]
    assert "requestBody" in paths["/orders"]["post"]
    balance = spec["components"]["schemas"]["LegacyBalance"]
    assert balance["properties"]["availableBalance"]["type"] == "number"
