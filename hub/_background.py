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
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
