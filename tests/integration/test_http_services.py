"""The REST contract with Postgres and Redis behind it."""

from __future__ import annotations

import time
import uuid
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
        register_limit_per_client=1000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


class TestServicesHttp(HttpContract):
    def test_readyz_names_each_service(self, client: TestClient) -> None:
        checks = client.get("/readyz").json()["checks"]
        assert set(checks) == {"postgres", "redis", "streaming"}


def test_a_prefix_in_the_redis_url_isolates_the_fan_out(schema_url: str, redis_url: str) -> None:
    """Pub/sub ignores database numbers: `?prefix=` keeps two Hubs on one Redis apart, and the
    other Redis clients (quotes, cache, rate limits) still accept the URL."""
    import redis as redis_sync

    prefix = f"hub-test-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        database_url=schema_url,
        redis_url=f"{redis_url}?prefix={prefix}",
        jwt_secret=SECRET,
        feed_in_process=False,
    )
    probe = redis_sync.Redis.from_url(redis_url)
    try:
        with TestClient(create_app(settings)) as client:
            deadline = time.monotonic() + 5
            while client.get("/readyz").status_code != 200:  # the pub/sub link is connecting
                assert time.monotonic() < deadline, client.get("/readyz").text
                time.sleep(0.05)
            channels: list[bytes | str] = []
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not channels:
                channels = probe.pubsub_channels(f"{prefix}*")  # the quote mirror's channels
                time.sleep(0.05)
            assert f"{prefix}ch:quotes:AAPL".encode() in channels
    finally:
        for key in probe.scan_iter(f"{prefix}*"):
            probe.delete(key)
        probe.close()
