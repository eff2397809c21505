"""Random frames never crash the protocol handler: always an error or a close, then healthy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from streaming import CloseCode, Engine, Limits

from .support import Client, client, close_code, running

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
actions = st.sampled_from(["auth", "subscribe", "unsubscribe", "ping", "pong", "dance", ""])
jsonish = st.builds(
    lambda action, extra: json.dumps({"action": action, **extra}),
    actions,
    st.dictionaries(st.sampled_from(["channels", "since", "token", "x"]), json_values, max_size=3),
)
frames = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    json_values.map(json.dumps),
    jsonish,
)

LIMITS = Limits(max_violations=1000, inbound_rate=1000, inbound_burst=1000, max_frame_bytes=150)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Engine, str]]:
    async with running(limits=LIMITS) as pair:
        yield pair


async def answer(c: Client, frame: str | bytes) -> list[dict[str, Any]]:
    """Send a frame then a ping; return what came back before the pong (or raise on close)."""
    await c.send(frame)
    await c.send({"action": "ping"})
    replies = []
    while True:
        message = await c.next(within=5)
        if message["type"] == "pong":
            return replies
        replies.append(message)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(frames, min_size=1, max_size=8))
async def test_random_frames_get_errors_or_a_clean_close(
    server: tuple[Engine, str], batch: list[str | bytes]
) -> None:
    engine, address = server
    async with client(address) as c:
        for frame in batch:
            closed: ConnectionClosed | None = None
            try:
                replies = await answer(c, frame)
            except ConnectionClosed as exc:
                closed = exc
            if closed is not None:
                # Only oversized frames (or a policy close) may end the connection.
                assert close_code(closed) in {CloseCode.MESSAGE_TOO_BIG, CloseCode.POLICY_VIOLATION}
                break
            for reply in replies:
                assert reply["type"] in {"error", "subscribed", "unsubscribed", "pong"}
                if reply["type"] == "error":
                    assert reply["code"] != "internal_error"
    # The handler is still healthy for the next connection.
    async with client(address) as fresh:
        assert await answer(fresh, json.dumps({"action": "pong"})) == []
    assert engine.stats()["errors"] >= 0
