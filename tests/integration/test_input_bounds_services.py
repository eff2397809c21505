"""Input bounds with Postgres behind the API: what the memory stores shrug off but asyncpg and
the schema refuse (a foreign key, a time before year 1)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from hub.adapters.jwt_tokens import JwtAccessTokens
from hub.config import Settings
from hub.domain.users import Role
from hub.entrypoints.http.app import create_app
from tests.http_suite import assert_problem, bearer, signup

pytestmark = pytest.mark.integration

SECRET = "integration-secret-0123456789abcdef"


@pytest.fixture
def client(schema_url: str, redis_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=schema_url,
        redis_url=redis_url,
        jwt_secret=SECRET,
        login_limit_per_client=1000,
        register_limit_per_client=1000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_deleted_users_token_cannot_create_a_watchlist(client: TestClient) -> None:
    """The row would break the users foreign key: that was a 500 here."""
    tokens = JwtAccessTokens(SECRET, ttl=timedelta(minutes=15), issuer="hub", audience="hub-api")
    ghost = {"Authorization": f"Bearer {tokens.issue(uuid.uuid4(), Role.USER, datetime.now(UTC))}"}
    r = client.post("/api/v1/watchlists", json={"name": "mine"}, headers=ghost)
    assert_problem(r, 404, "not_found")
    assert client.get("/api/v1/watchlists", headers=ghost).json() == []


def test_times_that_leave_the_calendar_in_utc_are_422(client: TestClient) -> None:
    """0001-01-01T00:00+23:59 is a valid RFC 3339 text whose UTC instant is before year 1:
    asyncpg cannot encode it."""
    auth = bearer(signup(client))
    far = "0001-01-01T00:00:00+23:59"
    oid = "00000000-0000-0000-0000-000000000000"
    cursor = base64.urlsafe_b64encode(f"{far}|{oid}".encode()).decode()
    for params in ({"after": far}, {"until": far}, {"cursor": cursor}):
        r = client.get("/api/v1/orders", params={"status": "all", **params}, headers=auth)
        assert_problem(r, 422, "validation_error")
