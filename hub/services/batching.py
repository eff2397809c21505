"""Group commit: concurrent callers hand in one item each and wait; one task runs whatever has
gathered through a batch function, so N items cost one transaction instead of N.

While a batch is being written the next one gathers, so the batch size grows with the load by
itself: one item when idle (no added latency), up to `max_batch` under pressure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# Returns one outcome per item, in order: None when it is done, the exception when it failed.
BatchFunction = Callable[[list[T]], Awaitable[list[BaseException | None]]]


class GroupCommit(Generic[T]):
    def __init__(self, run_batch: BatchFunction[T], *, max_batch: int = 128) -> None:
        self._run_batch = run_batch
        self._max = max_batch
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> None:
        """Wait until the batch holding `item` is done; raise what failed it. If the caller is
        cancelled, the item may still be processed (the batch functions are idempotent)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="group-commit")
        await future

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[None]]] = []
        try:
            while self._pending:
                await asyncio.sleep(0)  # let callers woken in this same loop turn join
                batch = [(i, f) for i, f in self._pending[: self._max] if not f.done()]
                del self._pending[: self._max]
                if not batch:
                    continue
                try:
                    outcomes = await self._run_batch([item for item, _ in batch])
                except Exception as exc:
                    outcomes = [exc] * len(batch)
                self.batches += 1
                self.items += len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if outcome is None:
                        future.set_result(None)
                    else:
                        future.set_exception(outcome)
        finally:
            self._task = None
            # Only when cancelled: nobody will run these, so their callers must not wait.
            for _, future in [*batch, *self._pending]:
                if not future.done():
                    future.cancel()
            self._pending.clear()

    async def aclose(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
