"""The per-connection outbox: bounded in bytes, with a named policy per channel kind."""

from __future__ import annotations

import math
from typing import Generic, TypeVar

T = TypeVar("T")


class Outbox(Generic[T]):
    """Pending outbound items for one connection.

    Two policies share one byte budget:
    - queued (reliable publications and control messages): kept in order; `push` refuses an item
      that would exceed the budget, and the caller disconnects the client (slow consumer);
    - conflated (latest-value publications): one slot per key, a newer value replaces the pending
      one, so a slow reader gets the newest value and never a backlog.
    Queued items drain before conflated ones so that a `subscribed` message always precedes the
    first value of its channel.
    """

    __slots__ = ("_latest", "_limit", "_queue", "_sizes", "pending_bytes")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        # item, size, counted size. A list, not a deque: an empty deque allocates a 64-slot
        # block (~0.7 KiB) per idle connection, and drains take a prefix in one slice anyway.
        self._queue: list[tuple[T, int, int]] = []
        self._latest: dict[str, T] = {}
        self._sizes: dict[str, int] = {}
        #: Bytes counted against the budget (replayed history is exempt, see `push`).
        self.pending_bytes = 0

    def push(self, item: T, size: int, *, bounded: bool = True) -> bool:
        """Queue an item; False (and nothing queued) if it would overflow the byte budget.

        `bounded=False` is for history replayed on subscribe: it is already bounded by the
        history size, and counting it would disconnect every client recovering a large gap.
        """
        if not bounded:
            self._queue.append((item, size, 0))
            return True
        if self.pending_bytes + size > self._limit and self._queue:
            return False
        self._queue.append((item, size, size))
        self.pending_bytes += size
        return True

    def put_latest(self, key: str, item: T, size: int) -> bool:
        """Set the pending value for `key`; True if it replaced (conflated) an older one."""
        old = self._sizes.get(key)
        self._latest[key] = item
        self._sizes[key] = size
        if old is None:
            self.pending_bytes += size
            return False
        self.pending_bytes += size - old
        return True

    def discard_latest(self, key: str) -> None:
        """Drop the pending value for `key` (the client unsubscribed)."""
        if key in self._latest:
            del self._latest[key]
            self.pending_bytes -= self._sizes.pop(key)

    def drain(self, max_bytes: int | None = None) -> list[T]:
        """Take pending items, queued ones first, up to about `max_bytes` (at least one item)."""
        queue = self._queue
        if not queue:  # the common case for market data: only conflated values pending
            items = list(self._latest.values())
            self._latest.clear()
            self._sizes.clear()
            self.pending_bytes = 0
            return items
        taken = counted = cut = 0
        budget = math.inf if max_bytes is None else max_bytes
        for _, size, charged in queue:
            if cut and taken + size > budget:
                break
            taken += size
            counted += charged
            cut += 1
        items = [item for item, _, _ in queue[:cut]]
        del queue[:cut]
        self.pending_bytes -= counted
        if not queue and self._latest:
            items.extend(self._latest.values())
            self.pending_bytes -= sum(self._sizes.values())
            self._latest.clear()
            self._sizes.clear()
        return items

    def __len__(self) -> int:
        return len(self._queue) + len(self._latest)

    def __bool__(self) -> bool:
        return bool(self._queue or self._latest)
