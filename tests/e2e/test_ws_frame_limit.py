"""`hub serve` refuses an oversized WebSocket frame from its header, before authentication and
without buffering it (uvicorn's ws_max_size follows the engine's frame limit)."""

from __future__ import annotations

import asyncio

from tests.e2e.server import NO_HISTORY, hub_serve
from tests.unit.streaming.test_credentials import huge_frame_close_code


def test_an_unauthenticated_15_mib_frame_is_refused_at_once() -> None:
    with hub_serve(NO_HISTORY) as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert asyncio.run(huge_frame_close_code("127.0.0.1", port)) == 1009
