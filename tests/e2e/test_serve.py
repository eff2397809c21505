"""`hub serve` as a user runs it: a subprocess, real HTTP, SIGTERM to stop."""

from __future__ import annotations

import signal
import uuid

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.server import hub_serve

pytestmark = pytest.mark.e2e

PASSWORD = "Str0ng-Enough!"


def journey(url: str) -> None:
    """Register, log in, refresh, read the account; then the failures a client will meet."""
    email = f"e2e{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=url, timeout=10) as http:
        r = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        tokens = r.json()
        r = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200, r.text
        access = r.json()["access_token"]
        r = http.get("/api/v1/account", headers={"Authorization": f"Bearer {access}"})
        assert r.status_code == 200
        assert r.json()["cash"] == "100000.00"

        r = http.post("/api/v1/auth/login", json={"email": email, "password": "Wrong-pass-1!"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
        r = http.get("/api/v1/account", headers={"Authorization": "Bearer forged.token.here"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_token"
        r = http.post("/api/v1/auth/login", content=b'{"email":')
        assert r.status_code == 400 and r.json()["code"] == "malformed_json"


def history(url: str) -> None:
    """Ready means the default history is in: a year of days and the live minute."""
    with httpx.Client(base_url=url, timeout=10) as http:
        login = {"email": "demo@hub.local", "password": "Demo-Trader-2026!"}
        token = http.post("/api/v1/auth/login", json=login).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        r = http.get("/api/v1/instruments/AAPL/bars?timeframe=1Day&limit=1000", headers=auth)
        assert r.status_code == 200, r.text
        assert len(r.json()["bars"]) >= 252
        r = http.get("/api/v1/instruments/AAPL/bars?limit=1000", headers=auth)
        assert len(r.json()["bars"]) == 1000


def test_embedded_default() -> None:
    with hub_serve() as server:
        assert httpx.get(f"{server.url}/readyz").json()["checks"]["bars"]["status"] == "up"
        history(server.url)
        journey(server.url)
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        code, out = server.stop()
    # uvicorn finishes the graceful shutdown, then re-raises SIGTERM so the exit status is honest.
    assert code in (0, -signal.SIGTERM), out
    assert "IN MEMORY" in out and "demo@hub.local" in out
    assert "Application shutdown complete" in out


@pytest.mark.integration
def test_services_mode(schema_url: str, redis_url: str, amqp_url: str) -> None:
    env = {
        "HUB_DATABASE_URL": schema_url,
        "HUB_REDIS_URL": redis_url,
        "HUB_AMQP_URL": amqp_url,
        "HUB_JWT_SECRET": "e2e-secret-0123456789abcdefghijklmnop",
    }
    with hub_serve(env) as server:
        ready = httpx.get(f"{server.url}/readyz").json()
        assert set(ready["checks"]) == {"postgres", "redis", "rabbitmq", "streaming"}
        journey(server.url)
        code, out = server.stop()
    assert code in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out


def test_services_mode_refuses_weak_secret() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "hub.entrypoints.cli", "serve"],
        env={"HUB_DATABASE_URL": "postgresql://127.0.0.1/test", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "HUB_JWT_SECRET" in out.stderr
