"""The REST contract with Postgres and Redis behind it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.http_suite import HttpContract

pytestmark = pytest.mark.integration

SECRET = "integration-secret-0123456789abcdef"


@pytest.fixture
def client(schema_url: str, redis_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=schema_url,
        redis_url=redis_url,
        jwt_secret=SECRET,
        login_limit_per_client=1000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


class TestServicesHttp(HttpContract):
    def test_readyz_names_each_service(self, client: TestClient) -> None:
        checks = client.get("/readyz").json()["checks"]
        assert set(checks) == {"postgres", "redis", "streaming"}
