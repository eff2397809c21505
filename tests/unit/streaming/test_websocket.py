"""The WebSocket protocol against a real uvicorn server and the `websockets` client, under
both server paths: direct frame writes (what `hub serve` runs) and plain ASGI sends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from streaming import CloseCode, Limits, Principal
from streaming.direct import DirectWebSocketProtocol

from . import support
from .support import Client, client, close_code, read_until_closed, running


@pytest.fixture(autouse=True, params=["direct", "asgi"])
def ws_protocol(request: pytest.FixtureRequest) -> Iterator[None]:
    protocols: dict[str, Any] = {"direct": DirectWebSocketProtocol, "asgi": "websockets-sansio"}
    support.WS_PROTOCOL[0] = protocols[request.param]
    yield
    support.WS_PROTOCOL[0] = DirectWebSocketProtocol


async def closed_with(c: Client, code: int) -> None:
    assert close_code(await read_until_closed(c)) == code


async def test_auth_by_first_frame_then_subscribe_and_receive() -> None:
    async with running() as (engine, address), client(address) as c:
        [subscribed] = await c.subscribe("quotes:AAPL")
        assert subscribed == {
            "type": "subscribed",
            "channel": "quotes:AAPL",
            "kind": "latest",
            "seq": 0,
        }
        await engine.publish("quotes:AAPL", "quote", {"symbol": "AAPL", "price": "189.12"})
        message = await c.expect("quote")
        assert message == {
            "type": "quote",
            "channel": "quotes:AAPL",
            "seq": 1,
            "data": {"symbol": "AAPL", "price": "189.12"},
        }
        assert engine.stats()["connections"] == 1


async def test_auth_by_header() -> None:
    async with running() as (_, address), client(address, header=True) as c:
        await c.send({"action": "ping"})
        assert (await c.expect("pong")) == {"type": "pong"}
        # A later `auth` renews the credentials (the fake tokens never expire).
        await c.send({"action": "auth", "token": "alice-token"})
        assert (await c.expect("authenticated")) == {"type": "authenticated"}


async def test_bad_token_closes_4001() -> None:
    async with running() as (_, address), client(address, token=None) as c:
        await c.send({"action": "auth", "token": "wrong"})
        error = await c.expect("error")
        assert error["code"] == "authentication_failed"
        await closed_with(c, CloseCode.AUTHENTICATION_FAILED)


async def test_bad_header_token_closes_4001() -> None:
    async with running() as (_, address):
        headers = {"Authorization": "Bearer nope"}
        async with connect(f"ws://{address}/ws", additional_headers=headers) as ws:
            assert close_code(await read_until_closed(Client(ws))) == 4001


async def test_first_frame_must_be_auth() -> None:
    async with running() as (_, address), client(address, token=None) as c:
        await c.send({"action": "ping"})
        assert (await c.expect("error"))["code"] == "not_authenticated"
        await closed_with(c, CloseCode.AUTHENTICATION_FAILED)


async def test_auth_timeout_closes_4002() -> None:
    limits = Limits(auth_timeout=0.2)
    async with running(limits=limits) as (_, address), client(address, token=None) as c:
        assert (await c.expect("error"))["code"] == "authentication_timeout"
        await closed_with(c, CloseCode.AUTHENTICATION_TIMEOUT)


async def test_forbidden_channel_is_an_error_and_the_connection_stays() -> None:
    async with running() as (engine, address), client(address) as c:
        await c.send({"action": "subscribe", "channels": ["secret:x", "quotes:A"]})
        error = await c.expect("error")
        assert error == {
            "type": "error",
            "code": "forbidden",
            "message": "channel not found or not allowed",
            "channel": "secret:x",
        }
        await c.expect("subscribed")
        await engine.publish("quotes:A", "quote", {"p": 1})
        assert (await c.expect("quote"))["channel"] == "quotes:A"


async def test_client_facing_name_is_used_for_private_channels() -> None:
    async with (
        running() as (engine, address),
        client(address) as alice,
        client(address, "bob-token") as bob,
    ):
        await alice.subscribe("orders")
        await bob.subscribe("orders")
        await engine.publish("orders:alice", "order", {"id": "a1"})
        await engine.publish("orders:bob", "order", {"id": "b1"})
        got_alice = await alice.expect("order")
        got_bob = await bob.expect("order")
        assert got_alice == {
            "type": "order",
            "channel": "orders",
            "seq": 1,
            "data": {"id": "a1"},
        }
        assert got_bob["data"] == {"id": "b1"}


async def test_latest_value_on_subscribe_and_unsubscribe() -> None:
    async with running() as (engine, address), client(address) as c:
        await engine.publish("quotes:A", "quote", {"p": 1})
        await engine.publish("quotes:A", "quote", {"p": 2})
        [subscribed] = await c.subscribe("quotes:A")
        assert subscribed["seq"] == 2
        current = await c.expect("quote")
        assert current["data"] == {"p": 2} and current["seq"] == 2
        await c.send({"action": "unsubscribe", "channels": ["quotes:A"]})
        assert (await c.expect("unsubscribed")) == {"type": "unsubscribed", "channel": "quotes:A"}
        await engine.publish("quotes:A", "quote", {"p": 3})
        await c.send({"action": "ping"})
        assert (await c.next())["type"] == "pong"  # nothing from quotes:A in between
        assert engine.stats()["subscriptions"] == 0


async def test_reliable_subscribe_with_since_recovers_in_order() -> None:
    async with running() as (engine, address):
        async with client(address) as c:
            await c.subscribe("orders")
            for i in range(1, 4):
                await engine.publish("orders:alice", "order", {"n": i})
            seen = [await c.expect("order") for _ in range(3)]
            last = seen[-1]["seq"]
        for i in range(4, 9):
            await engine.publish("orders:alice", "order", {"n": i})
        async with client(address) as c:
            [subscribed] = await c.subscribe("orders", since={"orders": last})
            assert subscribed["recovered"] is True
            assert subscribed["seq"] == 8
            replay = [await c.expect("order") for _ in range(5)]
            assert [m["seq"] for m in replay] == [4, 5, 6, 7, 8]
            assert [m["data"]["n"] for m in replay] == [4, 5, 6, 7, 8]


async def test_reliable_since_beyond_history_reports_not_recovered() -> None:
    async with running(history_size=3) as (engine, address):
        for i in range(10):
            await engine.publish("orders:alice", "order", {"n": i})
        async with client(address) as c:
            [subscribed] = await c.subscribe("orders", since={"orders": 2})
            assert subscribed["recovered"] is False
            await engine.publish("orders:alice", "order", {"n": 10})
            assert (await c.expect("order"))["seq"] == 11


async def test_subscription_limit_and_duplicates() -> None:
    async with running(limits=Limits(max_subscriptions=2)) as (_, address), client(address) as c:
        await c.send({"action": "subscribe", "channels": ["quotes:A", "quotes:B", "quotes:C"]})
        error = await c.expect("error")
        assert error["code"] == "too_many_subscriptions" and error["channel"] == "quotes:C"
        await c.send({"action": "subscribe", "channels": ["quotes:A"]})
        assert (await c.expect("error"))["code"] == "already_subscribed"


async def test_connections_per_principal_limit() -> None:
    limits = Limits(max_connections_per_principal=1)
    async with (
        running(limits=limits) as (_, address),
        client(address),
        client(address, token=None) as second,
    ):
        await second.send({"action": "auth", "token": "alice-token"})
        assert (await second.expect("error"))["code"] == "too_many_connections"
        await closed_with(second, CloseCode.TOO_MANY_CONNECTIONS)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "malformed_json"),
        ('{"action":"dance"}', "unknown_action"),
        ('{"channels":[]}', "invalid_message"),
        ('{"action":"subscribe","channels":"quotes:A"}', "invalid_message"),
        ('{"action":"subscribe","channels":["a"],"since":{"a":-1}}', "invalid_message"),
        ("[1,2,3]", "invalid_message"),
    ],
)
async def test_bad_frames_get_stable_error_codes(frame: str, code: str) -> None:
    async with running() as (_, address), client(address) as c:
        await c.send(frame)
        assert (await c.expect("error"))["code"] == code
        await c.send({"action": "ping"})
        await c.expect("pong")


async def test_continued_abuse_closes_4008() -> None:
    async with running(limits=Limits(max_violations=3)) as (_, address), client(address) as c:
        for _ in range(5):
            await c.send("garbage")
        await closed_with(c, CloseCode.POLICY_VIOLATION)


async def test_flood_is_rate_limited() -> None:
    limits = Limits(inbound_rate=1, inbound_burst=3, max_violations=100)
    async with running(limits=limits) as (_, address), client(address) as c:
        for _ in range(6):
            await c.send({"action": "ping"})
        types = [(await c.next())["type"] for _ in range(6)]
        assert types.count("pong") == 3
        assert types.count("error") == 3


async def test_oversized_frame_closes_1009() -> None:
    async with running(limits=Limits(max_frame_bytes=100)) as (_, address), client(address) as c:
        await c.send({"action": "subscribe", "channels": ["quotes:" + "A" * 200]})
        assert (await c.expect("error"))["code"] == "frame_too_large"
        await closed_with(c, CloseCode.MESSAGE_TOO_BIG)


async def test_idle_timeout_and_server_ping() -> None:
    limits = Limits(ping_interval=0.1, idle_timeout=0.5)
    async with running(limits=limits) as (_, address), client(address) as c:
        assert (await c.expect("ping"))["type"] == "ping"
        await c.send({"action": "pong"})
        await closed_with(c, CloseCode.IDLE_TIMEOUT)


async def test_a_busy_listener_that_answers_pings_is_not_closed_as_idle() -> None:
    """Quotes flow to a client that only listens: the server must still ask it for a pong
    (the idle timeout counts what the client sends), and a client that answers stays open."""
    limits = Limits(ping_interval=0.1, idle_timeout=0.35)
    async with running(limits=limits) as (engine, address), client(address) as c:
        await c.subscribe("quotes:BUSY")

        async def publish() -> None:
            for i in range(40):  # 1 s of quotes every 25 ms: the server is never silent
                await engine.publish("quotes:BUSY", "quote", {"n": i})
                await asyncio.sleep(0.025)

        publisher = asyncio.create_task(publish())
        pings = 0
        while not publisher.done():
            message = await c.next(within=1.0)
            if message["type"] == "ping":
                pings += 1
                await c.send({"action": "pong"})
        await publisher
        assert pings >= 3
        assert engine.stats()["connections"] == 1  # still open after ~3 idle timeouts


async def test_a_busy_listener_that_never_answers_is_closed_as_idle() -> None:
    limits = Limits(ping_interval=0.1, idle_timeout=0.35)
    async with running(limits=limits) as (engine, address), client(address) as c:
        await c.subscribe("quotes:BUSY")
        for i in range(30):
            await engine.publish("quotes:BUSY", "quote", {"n": i})
            await asyncio.sleep(0.025)
        await closed_with(c, CloseCode.IDLE_TIMEOUT)


async def test_engine_shutdown_closes_1001() -> None:
    async with running() as (engine, address), client(address) as c:
        await c.subscribe("quotes:A")
        await engine.__aexit__(None, None, None)
        await closed_with(c, CloseCode.GOING_AWAY)
        await engine.__aenter__()  # so the fixture can exit it again


async def test_batching_puts_several_messages_in_one_frame() -> None:
    limits = Limits(flush_interval=0.05)
    async with running(limits=limits) as (engine, address), client(address) as c:
        await c.subscribe("orders")
        for i in range(5):
            await engine.publish("orders:alice", "order", {"n": i})
        await c.expect("order")
        assert len(c.pending) == 4  # the other four arrived in the same frame


async def test_a_failing_authorizer_fails_only_that_channel() -> None:
    async with running() as (engine, address), client(address) as c:
        original = engine.authorizer.resolve

        def resolve(principal: Principal, channel: str) -> str | None:
            if channel == "quotes:BOOM":
                raise RuntimeError("authorizer bug")
            return original(principal, channel)

        engine.authorizer.resolve = resolve  # type: ignore[method-assign]
        await c.send({"action": "subscribe", "channels": ["quotes:BOOM", "quotes:OK"]})
        error = await c.expect("error")
        assert (error["code"], error["channel"]) == ("internal_error", "quotes:BOOM")
        await c.expect("subscribed", lambda m: m["channel"] == "quotes:OK")
        await engine.publish("quotes:OK", "quote", {"p": 1})
        assert (await c.expect("quote"))["data"] == {"p": 1}
