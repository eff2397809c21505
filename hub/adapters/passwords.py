"""argon2id password hashing (argon2-cffi, RFC 9106 low-memory profile), off the event loop.

One hash or verify costs tens of milliseconds of CPU. On the event loop that would freeze every
socket and request of the process for as long; argon2-cffi releases the GIL while it computes,
so the work runs in a small thread pool instead, one thread per core. The pool's queue is
bounded: when more logins are waiting than it can absorb, the next one is refused at once (503
with Retry-After) rather than waiting behind a growing line.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from hub.domain.errors import Overloaded

T = TypeVar("T")


class Argon2Hasher:
    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost: int = 19 * 1024,
        parallelism: int = 1,
        workers: int | None = None,
        max_waiting: int = 32,
    ) -> None:
        # OWASP's argon2id minimum (19 MiB, t=2, p=1): strong, and quick enough for a 2-core box.
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        self._workers = workers or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="argon2")
        self._limit = self._workers + max_waiting
        self.pending = 0
        self.refused = 0

    async def _off_loop(self, work: Callable[..., T], *args: str) -> T:
        if self.pending >= self._limit:
            self.refused += 1
            raise Overloaded(f"{self.pending} passwords are being checked; retry shortly")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        finally:
            self.pending -= 1

    async def hash(self, password: str) -> str:
        return await self._off_loop(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._off_loop(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
