"""The asyncpg pool. Unknown query parameters of the URL become server settings, so a URL such
as postgresql://host/db?search_path=tenant_a selects a schema (the tests use that)."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

log = structlog.get_logger("hub.postgres")


async def _release(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: only a rollback if it is still in
    a transaction. asyncpg's default reset also runs `SELECT pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL` on every release, one more round trip per use for state this
    code never leaves on a pooled connection (its advisory locks are released explicitly or
    held on dedicated connections; it never LISTENs, SETs or opens cursors on the pool)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    # asyncpg does not accept the SQLAlchemy-style scheme; normalise it.
    url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, command_timeout=30, reset=_release
    )
    assert pool is not None
    return pool


async def close_pool(pool: asyncpg.Pool, grace_s: float = 10.0) -> None:
    """Close gracefully, waiting for borrowed connections at most `grace_s` seconds; then
    terminate, so a connection a cancelled task never returned cannot hang shutdown."""
    try:
        await asyncio.wait_for(pool.close(), grace_s)
    except TimeoutError:
        log.warning("database pool did not close in time; terminating it", grace_s=grace_s)
        pool.terminate()


async def ping(pool: asyncpg.Pool) -> None:
    async with pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1")
