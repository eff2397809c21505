"""The REST contract on the embedded (memory) wiring."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.http_suite import HttpContract, assert_problem, signup


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(login_limit_per_client=1000, register_limit_per_client=1000))
    ) as client:
        yield client


class TestEmbeddedHttp(HttpContract):
    pass


def test_demo_user_can_log_in(client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/login", json={"email": "demo@hub.local", "password": "Demo-Trader-2026!"}
    )
    assert r.status_code == 200


def test_login_rate_limit_is_429_with_retry_after() -> None:
    with TestClient(create_app(Settings(login_limit_per_email=2))) as client:
        tokens = signup(client, "rl@example.com")
        assert tokens
        for _ in range(2):
            client.post(
                "/api/v1/auth/login", json={"email": "rl@example.com", "password": "Nope-0000!"}
            )
        r = client.post(
            "/api/v1/auth/login", json={"email": "rl@example.com", "password": "Nope-0000!"}
        )
        assert_problem(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) > 0


def test_registration_rate_limit_is_429_with_retry_after() -> None:
    with TestClient(create_app(Settings(register_limit_per_client=2))) as client:
        for i in range(2):
            signup(client, f"reg{i}@example.com")
        r = client.post(
            "/api/v1/auth/register", json={"email": "reg2@example.com", "password": "Str0ng-Pass!"}
        )
        assert_problem(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) > 0
        r = client.post(
            "/api/v1/auth/login", json={"email": "reg2@example.com", "password": "Str0ng-Pass!"}
        )
        assert r.status_code == 401  # the refused registration created nothing


def test_request_metrics_count_each_request_once(client: TestClient) -> None:
    def count() -> float:
        wanted = 'hub_http_requests_total{method="GET",route="/api/v1/instruments",status="401"}'
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(wanted):
                return float(line.rpartition(" ")[2])
        return 0.0

    before = count()
    for _ in range(3):
        assert client.get("/api/v1/instruments").status_code == 401
    assert count() == before + 3


def test_metrics_export_every_components_counters(client: TestClient) -> None:
    # Each component reports its own stats(); /metrics carries one family per counter.
    names = {
        line.split(" ")[0].split("{")[0]
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("hub_")
    }
    for wanted in (
        "hub_streaming_connections",
        "hub_market_data_cache_hits_total",
        "hub_outbox_sent_total",
        "hub_admission_shed_total",
        "hub_admission_in_flight",
        "hub_worker_processed_total",
        "hub_worker_dead_lettered_total",
        "hub_supervisor_resting_orders",  # a gauge: it goes down too
        "hub_feed_published_total",
        "hub_process_tasks",
    ):
        assert wanted in names, wanted
