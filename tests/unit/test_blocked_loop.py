"""Nothing blocks the event loop: login, order submit and the socket paths, measured with
asyncio's own slow-callback detection on the loop that runs the real app (uvicorn, in process).

Threshold: 40 ms. One argon2id verify costs ~55 ms of CPU here, which is what a login on the
loop used to block every socket for; a quote stream at 50 Hz has a 20 ms frame, and the submit
target is a 20 ms p99, so 40 ms is already a visible stall. Scheduling noise on a shared box can
stretch one step past it now and then, so a path fails only if it stalls in both of two rounds:
a real blocking call does so every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.unit.streaming.support import serve_app

THRESHOLD_S = 0.040
SLOW = re.compile(r"took (\d+\.\d+) seconds")


@contextlib.asynccontextmanager
async def hub_in_this_loop() -> AsyncIterator[str]:
    settings = Settings(feed_quotes_per_second=100, login_limit_per_client=1000)
    async with serve_app(create_app(settings), lifespan="on") as address:
        yield address


class SlowSteps(logging.Handler):
    """Collects asyncio's 'Executing <...> took N seconds' warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.steps: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        found = SLOW.search(message)
        if found:
            self.steps.append((float(found.group(1)), message[:300]))


@contextlib.contextmanager
def watched() -> Iterator[SlowSteps]:
    loop = asyncio.get_running_loop()
    handler = SlowSteps()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    loop.set_debug(True)
    loop.slow_callback_duration = THRESHOLD_S
    try:
        yield handler
    finally:
        loop.set_debug(False)
        logger.removeHandler(handler)


async def one_round(address: str, email: str) -> None:
    """Log in, submit an order, and receive quotes and the order's events on a socket."""
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
        body = {"email": email, "password": "Quiet-Harbor-2026!"}
        assert (await http.post("/api/v1/auth/register", json=body)).status_code in (201, 409)
        logins = [http.post("/api/v1/auth/login", json=body) for _ in range(4)]
        answers = await asyncio.gather(*logins)  # concurrent logins: the old stall, four times
        token = answers[0].json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with connect(f"ws://{address}/ws", additional_headers=auth) as ws:
            await ws.send('{"action":"subscribe","channels":["orders","quotes:AAPL"]}')
            order = {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "1"}
            for _ in range(5):
                assert (
                    await http.post("/api/v1/orders", json=order, headers=auth)
                ).status_code == 202
            deadline = time.monotonic() + 5
            frames = 0
            while time.monotonic() < deadline and frames < 20:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await ws.recv()
                        frames += 1
            assert frames > 0


async def test_the_canary_is_caught() -> None:
    """The detector itself works: a 60 ms blocking call on the loop is reported."""
    with watched() as slow:
        await asyncio.sleep(0)
        time.sleep(0.06)  # noqa: ASYNC251 - the blocking call the detector must catch
        await asyncio.sleep(0)
    assert any(seconds >= THRESHOLD_S for seconds, _ in slow.steps)


@pytest.mark.timeout(120)
async def test_login_submit_and_sockets_never_stall_the_loop() -> None:
    async with hub_in_this_loop() as address:
        await one_round(address, "warmup@example.com")  # imports, first JIT-ish costs
        rounds: list[list[tuple[float, str]]] = []
        for k in range(2):
            with watched() as slow:
                await one_round(address, f"round{k}@example.com")
            rounds.append(slow.steps)
    if all(rounds):
        worst = max(max(r) for r in rounds)
        pytest.fail(f"the loop stalled in every round; worst: {worst[0] * 1000:.0f} ms {worst[1]}")
