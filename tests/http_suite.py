"""The REST contract as a client sees it. Runs on the embedded app (tests/unit) and on the app
wired to Postgres and Redis (tests/integration); a subclass provides the `client` fixture."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

PASSWORD = "Str0ng-Enough!"
PROBLEM = "application/problem+json"


def email() -> str:
    return f"t{uuid.uuid4().hex[:12]}@example.com"


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] and body["title"] and body["detail"]
    return body


def signup(client: TestClient, address: str | None = None) -> dict[str, Any]:
    address = address or email()
    r = client.post("/api/v1/auth/register", json={"email": address, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/login", json={"email": address, "password": PASSWORD})
    assert r.status_code == 200, r.text
    tokens: dict[str, Any] = r.json()
    return tokens


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


class HttpContract:
    def test_register_login_account(self, client: TestClient) -> None:
        address = email()
        r = client.post(
            "/api/v1/auth/register", json={"email": address, "password": PASSWORD, "name": "Ann"}
        )
        assert r.status_code == 201
        body = r.json()
        assert body["user"]["email"] == address and body["user"]["role"] == "user"
        assert body["account"]["cash"] == "100000.00"
        tokens = client.post(
            "/api/v1/auth/login", json={"email": address, "password": PASSWORD}
        ).json()
        assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
        account = client.get("/api/v1/account", headers=bearer(tokens)).json()
        assert account == {
            **account,
            "cash": "100000.00",
            "reserved_cash": "0.00",
            "buying_power": "100000.00",
            "equity": "100000.00",
            "currency": "USD",
        }
        me = client.get("/api/v1/auth/me", headers=bearer(tokens)).json()
        assert me["email"] == address

    def test_refresh_rotation_and_reuse(self, client: TestClient) -> None:
        tokens = signup(client)
        r = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200
        rotated = r.json()
        assert client.get("/api/v1/account", headers=bearer(rotated)).status_code == 200
        again = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert_problem(again, 401, "refresh_token_reused")
        dead = client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
        assert_problem(dead, 401, "refresh_token_reused")

    def test_logout(self, client: TestClient) -> None:
        tokens = signup(client)
        r = client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 204
        r = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 401

    def test_wrong_password_and_duplicate(self, client: TestClient) -> None:
        address = email()
        signup(client, address)
        r = client.post("/api/v1/auth/login", json={"email": address, "password": "Wrong-pass-1!"})
        assert_problem(r, 401, "invalid_credentials")
        r = client.post("/api/v1/auth/register", json={"email": address, "password": PASSWORD})
        assert_problem(r, 409, "email_taken")

    def test_weak_password_names_the_rule(self, client: TestClient) -> None:
        r = client.post("/api/v1/auth/register", json={"email": email(), "password": "alllower1!"})
        body = assert_problem(r, 422, "weak_password")
        assert "upper-case" in body["detail"] and body["violations"]

    @pytest.mark.parametrize(
        "header",
        [None, "Bearer", "Bearer garbage", "Basic dXNlcjpwYXNz", "Bearer a.b.c"],
    )
    def test_bad_tokens_are_401(self, client: TestClient, header: str | None) -> None:
        headers = {"Authorization": header} if header else {}
        r = client.get("/api/v1/account", headers=headers)
        assert_problem(r, 401, "invalid_token")
        assert r.headers["www-authenticate"].startswith("Bearer")

    def test_forged_token_is_401(self, client: TestClient) -> None:
        import jwt

        tokens = signup(client)
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        forged = jwt.encode({**claims, "role": "admin"}, "not-the-secret-" * 3, algorithm="HS256")
        r = client.get("/api/v1/account", headers={"Authorization": f"Bearer {forged}"})
        assert_problem(r, 401, "invalid_token")

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            (b"{not json", 400, "malformed_json"),
            (b"", 400, "malformed_json"),
            (b"[]", 422, "validation_error"),
            (b'{"email": 5, "password": "x"}', 422, "validation_error"),
            (b'{"email": "a@b.co"}', 422, "validation_error"),
            (
                b'{"email": "a@b.co", "password": "Str0ng-Enough!", "admin": true}',
                422,
                "validation_error",
            ),
            (b'{"email": "nope", "password": "Str0ng-Enough!"}', 422, "validation_error"),
            (b"\xff\xfe\x00", 400, "malformed_json"),
        ],
    )
    def test_malformed_bodies(
        self, client: TestClient, body: bytes, status: int, code: str
    ) -> None:
        r = client.post(
            "/api/v1/auth/register", content=body, headers={"content-type": "application/json"}
        )
        assert_problem(r, status, code)

    def test_oversized_body(self, client: TestClient) -> None:
        huge = b'{"email": "a@b.co", "password": "' + b"x" * 200_000 + b'"}'
        r = client.post("/api/v1/auth/register", content=huge)
        assert_problem(r, 413, "payload_too_large")

    def test_unknown_route_and_method(self, client: TestClient) -> None:
        assert_problem(client.get("/api/v1/nothing"), 404, "not_found")
        r = client.delete("/api/v1/account")
        assert_problem(r, 405, "method_not_allowed")
        assert "GET" in r.headers["allow"]

    def test_health_ready_metrics_openapi_docs(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert all(c["status"] == "up" for c in ready.json()["checks"].values())
        spec = client.get("/openapi.json").json()
        assert spec["openapi"].startswith("3.")
        assert (
            "/api/v1/auth/register" in spec["paths"] and "Problem" in spec["components"]["schemas"]
        )
        docs = client.get("/docs")
        assert docs.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in docs.text
        assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200
        assert "hub_http_requests_total" in client.get("/metrics").text
