"""Admission control for order submits: shed load before it turns into unbounded queues.

Three bounds, each a plain number a person can reason about:
- submits in flight in this process (each holds a database connection for two round trips):
  past it, a new submit would only wait in line, so its latency bound would be gone;
- submits in flight for one account, once this process is half busy: an algorithm firing
  orders as fast as it can then gets 429 beyond its share instead of crowding everyone else
  out of the first bound (while the process is not busy, an account may use more);
- the order backlog (outbox rows not yet relayed plus work messages waiting for a worker),
  polled a few times a second: past it, an accepted order would wait longer than the backlog
  takes to drain, so it is refused now rather than filled late;
- the event loop's lag (how late a 20 ms timer fires, smoothed): when the process has more
  work than CPU, requests queue before any handler sees them (the in-flight count stays low),
  and only the lag shows it.
A refused submit gets Overloaded (503 with Retry-After) or RateLimited (429 with Retry-After)
and changes nothing; every order that was accepted (202) still fills.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager

import structlog

from hub.domain.errors import Overloaded, RateLimited

log = structlog.get_logger("hub.admission")

LAG_TICK_S = 0.02


class Admission:
    def __init__(
        self,
        *,
        max_in_flight: int,
        max_backlog: int,
        max_per_account: int = 4,
        backlog: Callable[[], Awaitable[int]],
        poll_interval: float = 0.25,
        max_lag_s: float = 0.1,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.max_backlog = max_backlog
        self.max_per_account = max_per_account
        self._per_account: dict[Hashable, int] = {}
        self._probe = backlog
        self._poll = poll_interval
        self.max_lag_s = max_lag_s
        self.lag_s = 0.0
        self.in_flight = 0
        self.backlog = 0
        self.shed = 0

    def stats(self) -> dict[str, int]:
        return {
            "shed": self.shed,
            "in_flight": self.in_flight,
            "backlog": self.backlog,
            "lag_ms": int(self.lag_s * 1000),
        }

    @contextmanager
    def admit(self, account: Hashable) -> Iterator[None]:
        mine = self._per_account.get(account, 0)
        if mine >= self.max_per_account and 2 * self.in_flight >= self.max_in_flight:
            self.shed += 1
            raise RateLimited(
                f"{mine} orders of this account are being submitted; retry shortly", retry_after=1
            )
        if self.in_flight >= self.max_in_flight:
            self.shed += 1
            raise Overloaded(f"{self.in_flight} orders are being submitted here; retry shortly")
        if self.lag_s >= self.max_lag_s:
            self.shed += 1
            raise Overloaded(f"this server is {self.lag_s * 1000:.0f} ms behind; retry shortly")
        if self.backlog >= self.max_backlog:
            self.shed += 1
            raise Overloaded(f"{self.backlog} orders are waiting to be processed; retry shortly")
        self.in_flight += 1
        self._per_account[account] = mine + 1
        try:
            yield
        finally:
            self.in_flight -= 1
            left = self._per_account[account] - 1
            if left:
                self._per_account[account] = left
            else:
                del self._per_account[account]

    async def run(self) -> None:
        """Watch the loop's lag and poll the backlog until cancelled. A probe that fails keeps
        the last reading: the dependency's own failure shows in /readyz, and submits still
        commit to the outbox."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time()
        while True:
            if loop.time() >= next_poll:
                next_poll = loop.time() + self._poll
                try:
                    self.backlog = await self._probe()
                except Exception as exc:
                    log.warning("cannot read the order backlog", error=repr(exc))
            asked = loop.time()
            await asyncio.sleep(LAG_TICK_S)
            late = max(0.0, loop.time() - asked - LAG_TICK_S)
            self.lag_s += 0.3 * (late - self.lag_s)  # smoothed: one slow callback is no trend
