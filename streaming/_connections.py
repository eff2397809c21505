"""The node's open connections (WebSocket, SSE and leases): admission per principal, one
heartbeat task for all of them, and ending them when their credentials expire, when their login
session is revoked, or when the engine stops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from streaming.auth import Principal
from streaming.limits import Limits
from streaming.protocol import CloseCode, ErrorCode
from streaming.session import Session, SessionState
from streaming.stats import Counters

#: Seconds between token-expiry checks (JWT `exp` has a resolution of one second anyway).
EXPIRY_CHECK_INTERVAL = 1.0


class Connections:
    """The open sessions, and how many each principal holds."""

    def __init__(self, limits: Limits, counters: Counters) -> None:
        self._limits = limits
        self._counters = counters
        self._sessions: set[Session[Any]] = set()
        self._per_principal: dict[str, int] = {}
        self._gone = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None

    def __iter__(self) -> Iterator[Session[Any]]:
        return iter(self._sessions)

    def admits(self, principal: Principal) -> bool:
        """Whether a new connection of `principal` would be admitted now."""
        count = self._per_principal.get(principal.id, 0)
        return count < self._limits.max_connections_per_principal

    def open(self, session: Session[Any]) -> bool:
        """Admit a connection; False if its principal already has too many."""
        key = session.principal.id
        count = self._per_principal.get(key, 0)
        if count >= self._limits.max_connections_per_principal:
            return False
        self._per_principal[key] = count + 1
        self._sessions.add(session)
        self._counters.connections += 1
        return True

    def close(self, session: Session[Any]) -> None:
        """Release a connection's subscriptions and slot (once; again is harmless)."""
        session.release()
        if session not in self._sessions:
            return
        self._sessions.discard(session)
        self._counters.connections -= 1
        key = session.principal.id
        remaining = self._per_principal.get(key, 1) - 1
        if remaining:
            self._per_principal[key] = remaining
        else:
            self._per_principal.pop(key, None)
        if not self._sessions:
            self._gone.set()

    def close_all(self, code: CloseCode, reason: str) -> None:
        """Ask every connection to close (see `wait_closed`)."""
        for session in list(self._sessions):
            session.request_close(code, reason)

    async def wait_closed(self) -> None:
        """Wait until every connection is closed."""
        if self._sessions:
            self._gone.clear()
            await self._gone.wait()

    def end_revoked(self, sid: str) -> None:
        """End every connection authenticated within login session `sid`."""
        # A scan of every session: revocations (logouts) are rare next to deliveries, and an
        # index by sid would cost memory on every connection.
        revoked = [s for s in self._sessions if s.principal.sid == sid]
        for session in revoked:
            session.end(CloseCode.SESSION_REVOKED, ErrorCode.SESSION_REVOKED, "session revoked")

    # --- heartbeats -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat task (pings, idle timeouts, token expiry)."""
        self._heartbeat = asyncio.create_task(self._beat(), name="streaming-heartbeat")

    async def stop(self) -> None:
        """Cancel and await the heartbeat task."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _beat(self) -> None:
        # One task for every connection's pings and idle timeout, instead of a task per
        # connection: idle connections then cost memory, not wake-ups.
        # Token expiry is checked every second (a float comparison per session, ~0.5 ms at
        # 10,000 sessions), pings and idle timeouts every `tick` (a method call per session).
        limits = self._limits
        tick = max(min(limits.ping_interval, limits.idle_timeout) / 4, 0.01)
        step = min(tick, EXPIRY_CHECK_INTERVAL)
        next_beat = time.monotonic() + tick
        while True:
            await asyncio.sleep(step)
            self._expire(time.time())
            now = time.monotonic()
            if now >= next_beat - step / 2:
                next_beat = now + tick
                for session in list(self._sessions):
                    session.heartbeat(now)

    def _expire(self, wall: float) -> None:
        expired = [
            session
            for session in self._sessions
            if (at := session.principal.expires_at) is not None
            and at <= wall
            and session.state is SessionState.OPEN
        ]
        for session in expired:
            session.end(CloseCode.TOKEN_EXPIRED, ErrorCode.TOKEN_EXPIRED, "access token expired")
