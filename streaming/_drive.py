"""Eager start of a coroutine: run it inline, and only hand it to a task if it must wait."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start(coro: Coroutine[Any, Any, None]) -> object | None:
    """Run `coro` until it first waits. Returns None if it finished, else what it yielded
    (pass that to `finish`). Exceptions raised before the first wait propagate.

    This is what Python 3.12's eager task factory does; doing it by hand keeps 3.11 support and
    saves a task per send when the socket accepts data immediately (uvicorn's `send` only waits
    when the transport is paused by TCP backpressure).
    """
    try:
        yielded: object = coro.send(None)
    except StopIteration:
        return None
    return yielded


async def finish(coro: Coroutine[Any, Any, None], yielded: object) -> None:
    """Drive a coroutine that `start` left suspended, from inside a task."""
    while True:
        try:
            if isinstance(yielded, asyncio.Future):
                # The coroutine's own `await` marked the future as blocking, which only a Task
                # may consume; clear it (as Task.__step does) so that we can await it here.
                yielded._asyncio_future_blocking = False
                await yielded  # the future the coroutine is waiting for
            else:
                await asyncio.sleep(0)  # a bare yield: just give the loop a turn
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
