"""argon2id runs off the event loop, in a bounded pool that refuses rather than queues forever."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from hub.adapters.passwords import Argon2Hasher
from hub.domain.errors import Overloaded


async def test_hashing_leaves_the_loop_free() -> None:
    hasher = Argon2Hasher(workers=1)
    try:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        running = asyncio.create_task(ticker())
        started = time.monotonic()
        digest = await hasher.hash("Quiet-Harbor-2026!")
        assert await hasher.verify(digest, "Quiet-Harbor-2026!")
        assert not await hasher.verify(digest, "Quiet-Harbor-2027!")
        took = time.monotonic() - started
        running.cancel()
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert took > 0.03  # the work was real...
        assert max(gaps) < took / 2  # ...and the loop kept ticking through it
    finally:
        hasher.close()


async def test_a_full_pool_refuses_at_once() -> None:
    hasher = Argon2Hasher(workers=1, max_waiting=1)
    try:
        first = asyncio.create_task(hasher.hash("Quiet-Harbor-2026!"))
        second = asyncio.create_task(hasher.hash("Quiet-Harbor-2026!"))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as refused:
            await hasher.hash("Quiet-Harbor-2026!")
        assert refused.value.retry_after == 1
        assert hasher.refused == 1
        await asyncio.gather(first, second)  # the accepted ones still complete
        assert hasher.pending == 0
    finally:
        hasher.close()
