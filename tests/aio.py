"""Small asyncio helpers shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any


async def until(done: Callable[[], object], within: float = 8.0) -> None:
    """Wait until `done()` is true (counters of other tasks have no event to await)."""
    async with asyncio.timeout(within):
        while not done():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def until_async(done: Callable[[], Awaitable[object]], within: float = 8.0) -> None:
    """Wait until `await done()` is true (a store read, say)."""
    async with asyncio.timeout(within):
        while not await done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `coro` as a task for the block's duration (a relay or a consumer), then stop it."""
    task = asyncio.create_task(coro)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
