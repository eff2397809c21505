"""Hub's streams end with their credentials: access-token expiry and session revocation (logout,
refresh-token reuse) end WebSocket, SSE and gRPC streams; a WebSocket renews in band; gRPC
shares the per-user stream limit; /sse errors are Hub problems. Embedded wiring, real servers
in this process, short token lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import grpc
import httpx
import jwt
import pytest

from hub.adapters.jwt_tokens import JwtAccessTokens
from hub.adapters.streaming_auth import JwtAuthorizer
from hub.bootstrap import DEMO_EMAIL, DEMO_PASSWORD, Container
from hub.config import Settings
from hub.domain.users import Role
from hub.entrypoints.grpc.client import MarketDataClient
from hub.entrypoints.grpc.server import grpc_server
from hub.entrypoints.http.app import create_app
from streaming import CloseCode
from tests.http_suite import PASSWORD
from tests.http_suite import email as new_email
from tests.unit.streaming.support import (
    client,
    close_code,
    eventually,
    read_until_closed,
    serve_app,
)
from tests.unit.streaming.test_sse import collect, events


@dataclass
class Hub:
    address: str
    http: httpx.AsyncClient
    container: Container
    grpc_target: str

    async def login(self) -> dict[str, Any]:
        body = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
        response = await self.http.post("/api/v1/auth/login", json=body)
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def refresh(self, tokens: dict[str, Any]) -> httpx.Response:
        body = {"refresh_token": tokens["refresh_token"]}
        return await self.http.post("/api/v1/auth/refresh", json=body)

    async def logout(self, tokens: dict[str, Any]) -> None:
        body = {"refresh_token": tokens["refresh_token"]}
        response = await self.http.post("/api/v1/auth/logout", json=body)
        assert response.status_code < 300, response.text


@contextlib.asynccontextmanager
async def hub(ttl: int = 900) -> AsyncIterator[Hub]:
    settings = Settings(
        access_token_ttl_s=ttl, login_limit_per_client=1000, register_limit_per_client=1000
    )
    app = create_app(settings)
    async with (
        serve_app(app, lifespan="on") as address,
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        container: Container = app.state.hub
        async with grpc_server(container, "127.0.0.1", 0) as port:
            yield Hub(address, http, container, f"127.0.0.1:{port}")


# --- claims ---------------------------------------------------------------------------------------


async def test_access_tokens_carry_the_session_and_old_tokens_stay_valid() -> None:
    tokens = JwtAccessTokens("s" * 48, ttl=timedelta(seconds=60), issuer="hub", audience="hub")
    user, family = uuid4(), uuid4()
    now = datetime.now(UTC)
    claims = tokens.verify(tokens.issue(user, Role.USER, now, sid=family))
    assert claims.sid == family.hex
    old = tokens.verify(tokens.issue(user, Role.USER, now))  # issued before `sid` existed
    assert old.sid is None
    authorizer = JwtAuthorizer(tokens.verify, set)
    principal = await authorizer.authenticate(tokens.issue(user, Role.USER, now, sid=family))
    assert principal.id == str(user)
    assert principal.sid == family.hex
    assert principal.expires_at == int((now + timedelta(seconds=60)).timestamp())


# --- WebSocket ------------------------------------------------------------------------------------


async def test_websocket_ends_4003_when_the_access_token_expires() -> None:
    async with hub(ttl=2) as h:
        tokens = await h.login()
        async with client(h.address, tokens["access_token"]) as c:
            await c.subscribe("orders")
            error = await c.expect("error", within=5)
            assert error["code"] == "token_expired"
            assert close_code(await read_until_closed(c)) == CloseCode.TOKEN_EXPIRED


async def test_renewal_on_the_open_websocket_keeps_the_orders_subscription() -> None:
    async with hub(ttl=4) as h:
        tokens = await h.login()
        first_exp = jwt.decode(tokens["access_token"], options={"verify_signature": False})["exp"]
        async with client(h.address, tokens["access_token"]) as c:
            await c.subscribe("orders")
            # Tokens expire on whole seconds: renewed 2 s later, the next one outlives the
            # first by at least 2 s, more than the engine's expiry check interval (1 s).
            await asyncio.sleep(2.0)
            response = await h.refresh(tokens)
            assert response.status_code == 200
            fresh = response.json()
            await c.send({"action": "auth", "token": fresh["access_token"]})
            assert (await c.expect("authenticated"))["expires_in"] > first_exp - time.time()
            await asyncio.sleep(max(first_exp - time.time(), 0) + 1.1)  # past the first expiry
            user = h.container.engine  # the private channel is still delivered
            await user.publish(f"orders:{user_id(tokens)}", "order", {"id": "x"})
            assert (await c.expect("order"))["data"] == {"id": "x"}
            assert close_code(await read_until_closed(c)) == CloseCode.TOKEN_EXPIRED


async def test_another_users_token_does_not_renew() -> None:
    async with hub() as h:
        tokens = await h.login()
        email = new_email()
        body = {"email": email, "password": PASSWORD}
        assert (await h.http.post("/api/v1/auth/register", json=body)).status_code == 201
        other = (await h.http.post("/api/v1/auth/login", json=body)).json()
        async with client(h.address, tokens["access_token"]) as c:
            await c.send({"action": "auth", "token": other["access_token"]})
            error = await c.expect("error")
            assert error["code"] == "authentication_failed"
            assert "another" in error["message"]


async def test_logout_ends_websocket_and_sse_of_that_session_at_once() -> None:
    async with hub() as h:
        doomed, kept = await h.login(), await h.login()
        params = {"channels": "orders", "access_token": doomed["access_token"]}
        async with (
            client(h.address, doomed["access_token"]) as ws,
            client(h.address, kept["access_token"]) as other,
            h.http.stream("GET", "/sse", params=params) as response,
        ):
            stream = events(response)
            await collect(stream, 2)
            started = time.monotonic()
            await h.logout(doomed)
            assert close_code(await read_until_closed(ws)) == CloseCode.SESSION_REVOKED
            rest = [e async for e in stream]
            assert [e["data"]["code"] for e in rest] == ["session_revoked"]
            assert time.monotonic() - started < 1.0  # at once, not at the token's expiry
            await other.send({"action": "ping"})
            await other.expect("pong")
        # The revoked session's access token (not expired) cannot open a stream again.
        async with client(h.address, token=None) as again:
            await again.send({"action": "auth", "token": doomed["access_token"]})
            assert (await again.expect("error"))["code"] == "authentication_failed"


async def test_refresh_token_reuse_ends_the_sessions_streams() -> None:
    async with hub() as h:
        tokens = await h.login()
        async with client(h.address, tokens["access_token"]) as ws:
            assert (await h.refresh(tokens)).status_code == 200
            assert (await h.refresh(tokens)).status_code == 401  # reused: family revoked
            assert close_code(await read_until_closed(ws)) == CloseCode.SESSION_REVOKED


# --- SSE ------------------------------------------------------------------------------------------


async def test_sse_errors_are_hub_problems_and_head_takes_no_slot() -> None:
    async with hub() as h:
        response = await h.http.get("/sse", params={"channels": "orders"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        problem = response.json()
        assert problem["type"] == "urn:hub:problem:not_authenticated"
        assert problem["detail"]
        assert problem["instance"] == "/sse"
        response = await h.http.get("/sse", params={"channels": "orders", "access_token": "x"})
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] == "authentication_failed"
        tokens = await h.login()
        params = {"channels": "orders", "access_token": tokens["access_token"]}
        for _ in range(20):  # more than the 16 slots a user has
            assert (await h.http.head("/sse", params=params)).status_code == 200
        assert h.container.engine.stats()["connections"] == 0
        async with client(h.address, tokens["access_token"]) as c:
            await c.send({"action": "ping"})
            await c.expect("pong")


async def test_sse_ends_with_an_error_event_when_the_token_expires() -> None:
    async with hub(ttl=2) as h:
        tokens = await h.login()
        params = {"channels": "orders", "access_token": tokens["access_token"]}
        async with h.http.stream("GET", "/sse", params=params) as response:
            stream = events(response)
            await collect(stream, 2)
            async with asyncio.timeout(5):
                rest = [e async for e in stream]
            assert [(e["event"], e["data"]["code"]) for e in rest] == [("error", "token_expired")]


# --- gRPC -----------------------------------------------------------------------------------------


async def test_grpc_streams_share_the_per_user_limit() -> None:
    async with hub() as h:
        tokens = await h.login()
        limit = h.container.engine.limits.max_connections_per_principal
        async with contextlib.AsyncExitStack() as stack:
            streams = []
            for _ in range(limit - 1):
                c = await stack.enter_async_context(
                    MarketDataClient(h.grpc_target, tokens["access_token"])
                )
                stream = cast(AsyncGenerator[object, None], c.stream(["AAPL"]))
                await anext(stream)
                streams.append(stream)
            await stack.enter_async_context(client(h.address, tokens["access_token"]))
            assert h.container.engine.stats()["connections"] == limit
            async with MarketDataClient(h.grpc_target, tokens["access_token"]) as extra:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    async for _ in extra.stream(["AAPL"]):
                        pass
            assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "at most 16" in (refused.value.details() or "")
            for stream in streams:
                await stream.aclose()
        await eventually(lambda: h.container.engine.stats()["connections"] == 0)


async def test_grpc_stream_ends_unauthenticated_at_expiry_and_on_logout() -> None:
    async with hub(ttl=2) as h:
        tokens = await h.login()
        async with MarketDataClient(h.grpc_target, tokens["access_token"]) as c:
            with pytest.raises(grpc.aio.AioRpcError) as expired:
                await drain(c.stream(["AAPL"]), within=6)
            assert expired.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "expired" in (expired.value.details() or "")
    async with hub() as h:
        tokens = await h.login()
        async with MarketDataClient(h.grpc_target, tokens["access_token"]) as c:
            stream = c.stream(["AAPL"])
            await anext(stream)
            await h.logout(tokens)
            with pytest.raises(grpc.aio.AioRpcError) as revoked:
                await drain(stream, within=2)
            assert revoked.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "revoked" in (revoked.value.details() or "")


async def drain(stream: AsyncIterator[object], within: float) -> None:
    async with asyncio.timeout(within):
        async for _ in stream:
            pass


def user_id(tokens: dict[str, Any]) -> UUID:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return UUID(claims["sub"])
