"""The compression policy: permessage-deflate is declined unless HUB_WS_DEFLATE=true, even
though every browser (and this client) offers it."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect

from tests.e2e.server import NO_HISTORY, hub_serve


async def negotiated(url: str) -> list[str]:
    ws_url = url.replace("http://", "ws://") + "/ws"
    async with connect(ws_url, compression="deflate") as ws:  # offers permessage-deflate
        return [type(e).__name__ for e in ws.protocol.extensions]


@pytest.mark.parametrize(("setting", "expected"), [(None, []), ("true", ["PerMessageDeflate"])])
def test_deflate_only_when_enabled(setting: str | None, expected: list[str]) -> None:
    env = {"HUB_WS_DEFLATE": setting} if setting else {}
    env |= NO_HISTORY
    with hub_serve(env) as server:
        assert asyncio.run(negotiated(server.url)) == expected
        server.stop()
