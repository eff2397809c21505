"""Fixed-window rate limiting in process memory."""

from __future__ import annotations

import math
import time


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (count, window end)

    async def hit(self, key: str, limit: int, window_s: int) -> int | None:
        now = time.monotonic()
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window_s
        count += 1
        self._windows[key] = (count, ends)
        if len(self._windows) > 100_000:
            self._evict(now)
        return math.ceil(ends - now) if count > limit else None

    async def blocked(self, key: str, limit: int) -> int | None:
        now = time.monotonic()
        count, ends = self._windows.get(key, (0, 0.0))
        if ends > now and count >= limit:
            return math.ceil(ends - now)
        return None

    def _evict(self, now: float) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
