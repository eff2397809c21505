"""Where the served API had drifted from its contract: the OpenAPI description of the
Idempotency-Key, the trailing-slash redirect, writes for a user that no longer exists, and
quantity spellings the documented grammar does not allow."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.adapters.jwt_tokens import JwtAccessTokens
from hub.config import Settings
from hub.domain.errors import MalformedNumber, NumberOutOfRange
from hub.domain.numeric import parse_decimal
from hub.domain.users import Role
from hub.entrypoints.http.app import create_app
from hub.entrypoints.http.decimals import PATTERN
from tests.http_suite import assert_problem, bearer, signup

SECRET = "contract-drift-secret-0123456789abcdef"


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(jwt_secret=SECRET, feed_quotes_per_second=200)
    with TestClient(create_app(settings)) as client:
        yield client


def spec(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


# --- OpenAPI ------------------------------------------------------------------------------------


def test_idempotency_key_is_documented_as_a_header(client: TestClient) -> None:
    paths = spec(client)["paths"]
    for path in ("/api/v1/orders", "/orders"):
        params = {p["name"]: p for p in paths[path]["post"]["parameters"]}
        assert params["Idempotency-Key"]["in"] == "header", path
        assert params["Idempotency-Key"]["required"] is False


def test_query_parameters_look_like_query_parameters(client: TestClient) -> None:
    """A guard for the same slip elsewhere: query names here are lower_snake; a header name
    (capitals, dashes) documented `in: query` is a header declared without `where`."""
    for path, item in spec(client)["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                if param["in"] == "query":
                    assert re.fullmatch(r"[a-z_]+", param["name"]), (method, path, param)


def test_the_documented_decimal_pattern_is_the_parser(client: TestClient) -> None:
    qty = spec(client)["components"]["schemas"]["OrderRequest"]["properties"]["qty"]
    string = next(s for s in qty["anyOf"] if s["type"] == "string")
    assert string["pattern"] == PATTERN
    samples = ["1", "-1", "+1", "1.5", "999999999999", "9999999999999", "0.0000000001"]
    samples += ["0.00000000001", "1e5", "1_0", " 1", "\uff11", ".5", "5.", "NaN", "-0"]
    for text in samples:
        try:
            parse_decimal(text, "qty")
            accepted = True
        except (MalformedNumber, NumberOutOfRange):
            accepted = False
        assert accepted == bool(re.fullmatch(PATTERN, text)), text


# --- trailing slashes ---------------------------------------------------------------------------


def test_a_trailing_slash_is_a_404_problem_not_a_redirect(client: TestClient) -> None:
    auth = bearer(signup(client))
    evil = {**auth, "Host": "evil.example"}
    for method, path in [
        ("GET", "/api/v1/orders/"),
        ("POST", "/api/v1/orders/"),
        ("GET", "/api/v1/account/"),
        ("GET", "/healthz/"),
        ("GET", "/docs/"),
    ]:
        r = client.request(method, path, headers=evil, follow_redirects=False)
        assert_problem(r, 404, "not_found")
        assert "location" not in r.headers
    assert client.get("/api/v1/account", headers=auth).status_code == 200


# --- writes for a user that no longer exists -----------------------------------------------------


def ghost_token() -> dict[str, str]:
    """A valid access token (right secret, issuer, audience, not expired) for a user id that
    has no user: as after the user was deleted."""
    tokens = JwtAccessTokens(SECRET, ttl=timedelta(minutes=15), issuer="hub", audience="hub-api")
    token = tokens.issue(uuid.uuid4(), Role.USER, datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def test_a_deleted_users_token_cannot_create_a_watchlist(client: TestClient) -> None:
    ghost = ghost_token()
    r = client.post("/api/v1/watchlists", json={"name": "mine", "symbols": ["AAPL"]}, headers=ghost)
    assert_problem(r, 404, "not_found")
    assert client.get("/api/v1/watchlists", headers=ghost).json() == []
    assert_problem(client.get("/api/v1/auth/me", headers=ghost), 404, "not_found")


# --- quantity spellings the grammar does not allow -----------------------------------------------


@pytest.mark.parametrize("qty", ["1_000", "\uff11\uff10", " 10", "10 ", "\u00a010", "1e1"])
def test_sloppy_quantities_are_refused(client: TestClient, qty: str) -> None:
    auth = bearer(signup(client))
    body = {"symbol": "AAPL", "side": "buy", "type": "market", "qty": qty}
    assert_problem(client.post("/api/v1/orders", json=body, headers=auth), 422, "validation_error")
    legacy = {"symbol": "AAPL", "order_type": "MARKET", "order_side": "BUY", "quantity": qty}
    assert_problem(client.post("/orders", json=legacy, headers=auth), 400, "validation_error")
    assert client.get("/api/v1/orders?status=all", headers=auth).json()["orders"] == []
