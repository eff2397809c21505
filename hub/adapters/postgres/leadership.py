"""One leader among many processes: a PostgreSQL session advisory lock, held on a connection of
its own for as long as the leader runs. If that connection dies the lock is gone with it, so the
leader stops and competes again; nothing is left locked by a crashed process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger("hub.leadership")

SUPERVISOR_LOCK = 0x4855_4253  # "HUBS"; two-key form: (this, hash of the schema)
POLL_S = 2.0  # how often a follower retries the lock
CHECK_S = 5.0  # how often the leader checks that its lock's session is alive


async def postgres_leadership(url: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `run` only while this process holds the lock; on losing it, cancel and compete
    again. Runs until cancelled."""
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(url)
            await _acquire(conn)
            log.info("this process leads the order supervisor")
            task = asyncio.create_task(run())
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=CHECK_S)
                    await conn.fetchval("SELECT 1")  # raises if the lock's session died
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await task  # re-raise what ended it
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("supervisor leadership lost, competing again", error=repr(exc))
            await asyncio.sleep(POLL_S)
        finally:
            if conn is not None:
                await conn.close()


async def _acquire(conn: asyncpg.Connection) -> None:
    # Polling, not waiting on the lock: a blocked pg_advisory_lock would hide a dead connection
    # from us until the leader lets go. Keyed by schema too: several Hubs may share a database.
    query = "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))"
    while True:
        if await conn.fetchval(query, SUPERVISOR_LOCK):
            return
        await asyncio.sleep(POLL_S)
