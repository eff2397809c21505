"""Revocation travels through the broker: `Engine.revoke` on one node ends the session's
streams on another OS process, and that node then refuses the session's tokens."""

from __future__ import annotations

import pytest

from streaming import CloseCode
from tests.broker_suite import node_server
from tests.unit.streaming.support import (
    client,
    close_code,
    eventually,
    expiring_token,
    make_engine,
    read_until_closed,
)

pytestmark = pytest.mark.integration


async def test_revoke_on_one_node_ends_streams_on_another_process(broker_url: str) -> None:
    async with node_server(broker_url) as other, make_engine(broker_url) as engine:
        await eventually(lambda: engine.ready)
        async with (
            client(other, expiring_token("alice", sid="gone")) as doomed,
            client(other, expiring_token("alice", sid="kept")) as kept,
        ):
            await doomed.subscribe("orders")
            await engine.revoke("gone")
            error = await doomed.expect("error")
            assert error["code"] == "session_revoked"
            assert close_code(await read_until_closed(doomed)) == CloseCode.SESSION_REVOKED
            await kept.send({"action": "ping"})
            await kept.expect("pong")
            async with client(other, token=None) as again:
                await again.send({"action": "auth", "token": expiring_token("alice", sid="gone")})
                assert (await again.expect("error"))["message"] == "session revoked"
