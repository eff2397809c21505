"""Streams live as long as their credentials: token expiry, session revocation, in-band renewal,
the per-principal slot across WebSocket, SSE and in-process leases, and /sse errors."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from streaming import CloseCode, Limits, TooManyConnections
from streaming.lease import Lease
from streaming.session import SessionState
from streaming.sse import SseEndpoint
from streaming.websocket import WebSocketEndpoint

from .support import (
    client,
    close_code,
    eventually,
    expiring_token,
    make_engine,
    read_until_closed,
    running,
    serve_app,
)
from .test_sse import collect, events


async def test_websocket_ends_4003_when_its_token_expires() -> None:
    async with running() as (engine, address):
        async with client(address, expiring_token("alice", ttl=1.0)) as c:
            [connected] = [m for m in c.seen if m["type"] == "connected"]
            assert 0 < connected["expires_in"] <= 1.0
            await c.subscribe("orders")
            error = await c.expect("error", within=3)
            assert error["code"] == "token_expired"
            assert close_code(await read_until_closed(c)) == CloseCode.TOKEN_EXPIRED
        async with client(address, "alice-token") as c:  # tokens without expiry stay
            assert "expires_in" not in c.seen[0]
        await eventually(lambda: engine.stats()["connections"] == 0)


async def test_an_expired_token_cannot_connect() -> None:
    async with running() as (_, address), client(address, token=None) as c:
        await c.send({"action": "auth", "token": expiring_token("alice", ttl=-1)})
        assert (await c.expect("error"))["code"] == "authentication_failed"
        assert close_code(await read_until_closed(c)) == CloseCode.AUTHENTICATION_FAILED


async def test_renewal_moves_the_expiry_and_keeps_subscriptions() -> None:
    token = expiring_token("alice", ttl=1.0)
    async with running() as (engine, address), client(address, token) as c:
        await c.subscribe("orders")
        await c.send({"action": "auth", "token": expiring_token("alice", sid="s2", ttl=4.0)})
        renewed = await c.expect("authenticated")
        assert 3.0 < renewed["expires_in"] <= 4.0
        await asyncio.sleep(1.6)  # past the first token's expiry (checked every second)
        await engine.publish("orders:alice", "order", {"id": 1})
        order = await c.expect("order")
        assert order["data"] == {"id": 1}
        # The connection now belongs to session s2: revoking s1 leaves it alone.
        await engine.revoke("s1")
        await c.send({"action": "ping"})
        await c.expect("pong")
        await engine.revoke("s2")
        assert (await c.expect("error"))["code"] == "session_revoked"
        assert close_code(await read_until_closed(c)) == CloseCode.SESSION_REVOKED


@pytest.mark.parametrize("which", ["another user", "invalid", "expired"])
async def test_a_bad_renewal_is_an_error_and_the_old_expiry_holds(which: str) -> None:
    token = {
        "another user": expiring_token("bob", ttl=60),
        "invalid": "nope",
        "expired": expiring_token("alice", ttl=-1),
    }[which]
    first = expiring_token("alice", ttl=1.5)
    async with running() as (_, address), client(address, first) as c:
        await c.send({"action": "auth", "token": token})
        assert (await c.expect("error"))["code"] == "authentication_failed"
        await c.send({"action": "ping"})
        await c.expect("pong")  # still open ...
        started = time.monotonic()
        exc = await read_until_closed(c)  # ... until the first token expires
        assert close_code(exc) == CloseCode.TOKEN_EXPIRED
        assert time.monotonic() - started < 3.0


async def test_revocation_ends_websocket_sse_and_leases_of_that_session_only() -> None:
    async with (
        running() as (engine, address),
        httpx.AsyncClient(base_url=f"http://{address}") as http,
        client(address, expiring_token("alice", sid="gone")) as doomed,
        client(address, expiring_token("alice", sid="kept")) as kept,
        engine.lease(make_principal("alice", "gone")) as lease_ended,
    ):
        params = {"channels": "orders", "access_token": expiring_token("alice", sid="gone")}
        async with http.stream("GET", "/sse", params=params) as response:
            stream = events(response)
            await collect(stream, 2)  # connected, subscribed
            await engine.revoke("gone")
            rest = [e async for e in stream]  # the stream ends
            assert [e["event"] for e in rest] == ["error"]
            assert rest[0]["data"]["code"] == "session_revoked"
        assert close_code(await read_until_closed(doomed)) == CloseCode.SESSION_REVOKED
        assert lease_ended.done()
        assert lease_ended.result()[0] == CloseCode.SESSION_REVOKED
        await kept.send({"action": "ping"})
        await kept.expect("pong")
        # The revoked session's tokens cannot open new streams (they have not expired).
        async with client(address, token=None) as again:
            await again.send({"action": "auth", "token": expiring_token("alice", sid="gone")})
            assert (await again.expect("error"))["message"] == "session revoked"


async def test_sse_ends_with_an_error_event_when_the_token_expires() -> None:
    async with (
        running() as (engine, address),
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        params = {"channels": "orders", "access_token": expiring_token("alice", ttl=1.0)}
        async with http.stream("GET", "/sse", params=params) as response:
            stream = events(response)
            [connected, _] = await collect(stream, 2)
            assert 0 < connected["data"]["expires_in"] <= 1.0
            async with asyncio.timeout(4):
                rest = [e async for e in stream]
            assert [e["event"] for e in rest] == ["error"]
            assert rest[0]["data"]["code"] == "token_expired"
        await eventually(lambda: engine.stats()["connections"] == 0)


async def test_a_lease_ends_when_its_token_expires() -> None:
    async with make_engine() as engine:
        async with engine.lease(make_principal("alice", "s", ttl=1.0)) as ended:
            async with asyncio.timeout(3):
                code, _ = await ended
            assert code == CloseCode.TOKEN_EXPIRED
        assert engine.stats()["connections"] == 0


async def test_leases_share_the_per_principal_limit_with_sockets() -> None:
    limits = Limits(max_connections_per_principal=2)
    async with (
        running(limits=limits) as (engine, address),
        client(address) as _,
        engine.lease(make_principal("alice", "s")),
    ):
        with pytest.raises(TooManyConnections):
            async with engine.lease(make_principal("alice", "s")):
                pass
        async with engine.lease(make_principal("bob", "s")):
            pass
        async with client(address, token=None) as third:
            await third.send({"action": "auth", "token": "alice-token"})
            assert (await third.expect("error"))["code"] == "too_many_connections"


async def test_a_session_moves_from_open_through_closing_to_closed() -> None:
    async with make_engine() as engine:
        session = Lease(engine, make_principal("alice", "s"))
        states = [session.state]
        assert engine.open_session(session)
        session.request_close(CloseCode.TOKEN_EXPIRED, "access token expired")
        session.request_close(CloseCode.GOING_AWAY, "too late")  # the first request wins
        states.append(session.state)
        assert session.ended.result() == (CloseCode.TOKEN_EXPIRED, "access token expired")
        engine.close_session(session)
        engine.close_session(session)  # again: harmless
        states.append(session.state)
        assert states == [SessionState.OPEN, SessionState.CLOSING, SessionState.CLOSED]
        assert engine.stats()["connections"] == 0


def make_principal(user: str, sid: str, ttl: float = 3600.0) -> Any:
    from streaming import Principal

    return Principal(user, expires_at=time.time() + ttl, sid=sid)


# --- /sse errors and HEAD -------------------------------------------------------------------------


async def test_head_sse_takes_no_slot() -> None:
    limits = Limits(max_connections_per_principal=2)
    async with (
        running(limits=limits) as (engine, address),
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        params = {"channels": "orders", "access_token": "alice-token"}
        for _ in range(5):
            response = await http.head("/sse", params=params)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
        assert engine.stats()["connections"] == 0
        async with http.stream("GET", "/sse", params=params) as response:
            assert response.status_code == 200
            first_events = events(response)  # referenced: a collected generator closes the stream
            await collect(first_events, 1)
            async with http.stream("GET", "/sse", params=params) as second:
                assert second.status_code == 200
                second_events = events(second)
                await collect(second_events, 1)
                # Full now: HEAD says what a GET would get.
                assert (await http.head("/sse", params=params)).status_code == 429
        await eventually(lambda: engine.stats()["connections"] == 0)


async def test_sse_errors_are_problem_details_with_a_bearer_challenge() -> None:
    limits = Limits(max_connections_per_principal=1)
    async with (
        running(limits=limits) as (_, address),
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        response = await http.get("/sse", params={"channels": "orders"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == "about:blank"
        assert body["title"] == "Unauthorized"
        assert body["code"] == "not_authenticated"
        assert body["detail"]
        response = await http.get("/sse", params={"channels": "orders", "access_token": "bad"})
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["code"] == "authentication_failed"
        response = await http.get("/sse", params={"access_token": "alice-token"})
        assert response.status_code == 400
        assert response.json()["detail"]
        params = {"channels": "orders", "access_token": "alice-token"}
        async with http.stream("GET", "/sse", params=params) as first:
            first_events = events(first)  # referenced: a collected generator closes the stream
            await collect(first_events, 1)
            response = await http.get("/sse", params=params)
            assert response.status_code == 429
            assert response.json()["code"] == "too_many_connections"


async def test_the_application_renders_sse_problems() -> None:
    from starlette.responses import Response

    def render(status: int, code: str, detail: str, headers: Any) -> Response:
        body = json.dumps({"status": status, "code": code, "detail": detail, "app": True})
        return Response(body, status, headers=dict(headers), media_type="application/problem+json")

    async with make_engine() as engine:
        app = Starlette(routes=[Route("/sse", SseEndpoint(engine, render), methods=["GET"])])
        async with (
            serve_app(app) as address,
            httpx.AsyncClient(base_url=f"http://{address}") as http,
        ):
            response = await http.get("/sse", params={"channels": "orders"})
            assert response.json()["app"] is True
            assert response.headers["www-authenticate"] == "Bearer"


# --- frame size before buffering ------------------------------------------------------------------


async def test_a_huge_frame_is_refused_from_its_header() -> None:
    """With the transport limit from Limits, the server closes 1009 after reading a frame
    header that announces 15 MiB, without waiting for (and buffering) the payload."""
    limits = Limits()
    async with make_engine(limits=limits) as engine:
        app = Starlette(routes=[WebSocketRoute("/ws", WebSocketEndpoint(engine))])
        async with serve_app(app, ws_max_size=limits.transport_max_frame_bytes) as address:
            host, port = address.split(":")
            assert await huge_frame_close_code(host, int(port)) == 1009
            # Just over the engine's limit, under the transport's: the engine's own error.
            async with client(address) as c:
                await c.send("x" * (limits.max_frame_bytes + 1))
                assert (await c.expect("error"))["code"] == "frame_too_large"
                assert close_code(await read_until_closed(c)) == 1009


async def huge_frame_close_code(host: str, port: int, size: int = 15 * 1024 * 1024) -> int | None:
    """Upgrade (unauthenticated), send a text frame header announcing `size` bytes and 64 KiB
    of it, then return
    the close code the server sends (None if it sends none within 3 s: it is waiting for the rest
    of the payload, i.e. buffering it)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")
        header = bytes((0x81, 0x80 | 127)) + size.to_bytes(8, "big") + b"\0\0\0\0"
        writer.write(header + b"x" * 65536)
        async with asyncio.timeout(3):
            while True:
                first = await reader.readexactly(2)
                length = first[1] & 0x7F
                if length == 126:
                    length = int.from_bytes(await reader.readexactly(2), "big")
                elif length == 127:
                    length = int.from_bytes(await reader.readexactly(8), "big")
                payload = await reader.readexactly(length)
                if first[0] & 0x0F == 0x8:  # close frame
                    return int.from_bytes(payload[:2], "big")
    except TimeoutError:
        return None
    finally:
        writer.close()
