"""Batches connection flushes: one event-loop callback per burst of publications, not one task
wake-up per connection."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Flushable(Protocol):
    def flush(self) -> None: ...


class Flusher:
    """Calls `flush()` on every connection marked since the last run, once per loop iteration.

    Publishing marks connections (a list append); the flush then writes to each socket inline
    whenever the socket accepts the data without waiting, which is the common case. Only a
    connection whose socket pushes back gets a writer task of its own, until it catches up.
    With `interval` > 0 the flush is delayed by that many seconds, trading latency for larger
    frames.
    """

    def __init__(self, interval: float = 0.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._interval = interval
        self._pending: list[Flushable] = []
        self._handle: asyncio.Handle | None = None
        #: What the targets of one run share (e.g. a frame encoded once for many sockets);
        #: emptied after every run, so it never outlives the publications it was built from.
        self.memo: dict[object, bytes] = {}

    def schedule(self, target: Flushable) -> None:
        self._pending.append(target)
        if self._handle is None:
            if self._interval:
                self._handle = self._loop.call_later(self._interval, self._run)
            else:
                self._handle = self._loop.call_soon(self._run)

    def _run(self) -> None:
        self._handle = None
        pending, self._pending = self._pending, []
        try:
            for target in pending:
                target.flush()
        finally:
            self.memo.clear()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._pending.clear()
