"""Background tasks owned by an exit stack: started now, cancelled and awaited on exit."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import AsyncExitStack, suppress
from typing import Any

import structlog

log = structlog.get_logger("hub.tasks")


def background(stack: AsyncExitStack, coro: Coroutine[Any, Any, None], name: str) -> None:
    """Run `coro` until the stack closes; a task that dies early is logged, loudly."""
    task = asyncio.create_task(coro, name=name)

    def done(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("background task died", task=name, error=repr(t.exception()))

    task.add_done_callback(done)

    async def stop() -> None:
        # Cancel again while it lingers: on Python 3.11, a cancel that lands while a library
        # is inside asyncio.wait_for (redis-py's socket writes) can be absorbed, and the task
        # would then never finish; a second cancel interrupts that wait.
        attempts = 0
        while not task.done():
            task.cancel()
            attempts += 1
            await asyncio.wait({task}, timeout=1.0)
        if attempts > 1:
            log.warning("background task needed repeated cancels", task=name, attempts=attempts)
        with suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
