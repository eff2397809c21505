"""Watchlists: the memory repository's contract and the REST routes on the embedded app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from hub.adapters.memory.watchlists import MemoryWatchlists
from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.http_suite import assert_problem, bearer, signup
from tests.watchlist_suite import WatchlistRepositoryContract


class TestMemoryWatchlists(WatchlistRepositoryContract):
    user_id = uuid.uuid4()
    other_id = uuid.uuid4()

    @pytest.fixture
    def repo(self) -> MemoryWatchlists:
        return MemoryWatchlists()


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(
        create_app(
            Settings(
                feed_in_process=False, login_limit_per_client=1000, register_limit_per_client=1000
            )
        )
    ) as c:
        yield c


def test_a_new_user_has_a_default_watchlist(client: TestClient) -> None:
    auth = bearer(signup(client))
    lists = client.get("/api/v1/watchlists", headers=auth).json()
    assert [w["name"] for w in lists] == ["My watchlist"]
    assert lists[0]["symbols"] == ["AAPL", "MSFT", "AMZN", "VOO", "BTC-USD"]


def test_crud(client: TestClient) -> None:
    auth = bearer(signup(client))
    r = client.post(
        "/api/v1/watchlists", json={"name": "Tech", "symbols": ["nvda", "AMD"]}, headers=auth
    )
    assert r.status_code == 201
    wid = r.json()["id"]
    assert r.json()["symbols"] == ["NVDA", "AMD"]
    r = client.put(f"/api/v1/watchlists/{wid}/symbols/intc", headers=auth)
    assert r.json()["symbols"] == ["NVDA", "AMD", "INTC"]
    r = client.put(f"/api/v1/watchlists/{wid}/symbols/INTC", headers=auth)
    assert r.json()["symbols"] == ["NVDA", "AMD", "INTC"]  # adding twice is fine
    r = client.delete(f"/api/v1/watchlists/{wid}/symbols/AMD", headers=auth)
    assert r.json()["symbols"] == ["NVDA", "INTC"]
    r = client.patch(f"/api/v1/watchlists/{wid}", json={"name": "Chips"}, headers=auth)
    assert r.json()["name"] == "Chips"
    assert r.json()["symbols"] == ["NVDA", "INTC"]
    r = client.patch(f"/api/v1/watchlists/{wid}", json={"symbols": ["VOO"]}, headers=auth)
    assert r.json()["symbols"] == ["VOO"]
    assert client.get(f"/api/v1/watchlists/{wid}", headers=auth).json()["name"] == "Chips"
    assert client.delete(f"/api/v1/watchlists/{wid}", headers=auth).status_code == 204
    assert_problem(client.get(f"/api/v1/watchlists/{wid}", headers=auth), 404, "not_found")


def test_rules_and_bad_input(client: TestClient) -> None:
    auth = bearer(signup(client))
    too_many = [f"SYM{i}" for i in range(21)]  # rejected for the count before any lookup
    cases = [
        ({"name": "x", "symbols": too_many}, 422, "validation_error"),
        ({"name": "x", "symbols": ["NOPE"]}, 422, "validation_error"),
        ({"name": ""}, 422, "validation_error"),
        ({"name": "My watchlist"}, 409, "watchlist_name_taken"),
        ({"symbols": []}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        assert_problem(client.post("/api/v1/watchlists", json=body, headers=auth), status, code)
    wid = client.get("/api/v1/watchlists", headers=auth).json()[0]["id"]
    filler = [
        "GOOGL",
        "META",
        "NVDA",
        "TSLA",
        "DIS",
        "JPM",
        "V",
        "JNJ",
        "WMT",
        "PG",
        "KO",
        "PEP",
        "NFLX",
        "INTC",
        "AMD",
    ]
    r = client.patch(
        f"/api/v1/watchlists/{wid}",
        headers=auth,
        json={"symbols": ["AAPL", "MSFT", "AMZN", "VOO", "BTC-USD", *filler]},
    )
    assert len(r.json()["symbols"]) == 20
    assert_problem(
        client.put(f"/api/v1/watchlists/{wid}/symbols/BAC", headers=auth), 422, "watchlist_full"
    )
    assert_problem(
        client.put(f"/api/v1/watchlists/{wid}/symbols/NOPE", headers=auth), 422, "validation_error"
    )
    assert_problem(
        client.delete(f"/api/v1/watchlists/{wid}/symbols/BAC", headers=auth), 404, "not_found"
    )
    assert_problem(client.get("/api/v1/watchlists/not-a-uuid", headers=auth), 404, "not_found")
    assert_problem(client.get("/api/v1/watchlists"), 401, "invalid_token")


def test_other_users_watchlists_do_not_exist(client: TestClient) -> None:
    alice, mallory = bearer(signup(client)), bearer(signup(client))
    wid = client.get("/api/v1/watchlists", headers=alice).json()[0]["id"]
    for method, path in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("PUT", "/symbols/AAPL"),
        ("DELETE", "/symbols/AAPL"),
    ):
        body = {"name": "stolen"} if method == "PATCH" else None
        r = client.request(method, f"/api/v1/watchlists/{wid}{path}", headers=mallory, json=body)
        assert_problem(r, 404, "not_found")
    assert client.get(f"/api/v1/watchlists/{wid}", headers=alice).json()["name"] == "My watchlist"


def test_portfolio_routes_empty_account_and_auth(client: TestClient) -> None:
    auth = bearer(signup(client))
    portfolio = client.get("/api/v1/portfolio", headers=auth).json()
    assert portfolio["equity"] == "100000.00"
    assert portfolio["positions"] == []
    assert portfolio["categories"] == []
    assert client.get("/api/v1/positions", headers=auth).json() == []
    for path in ("/api/v1/portfolio", "/api/v1/positions", "/api/v1/account"):
        assert_problem(client.get(path), 401, "invalid_token")
