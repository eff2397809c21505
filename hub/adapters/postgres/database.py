"""The asyncpg pool. Unknown query parameters of the URL become server settings, so a URL such
as postgresql://host/db?search_path=tenant_a selects a schema (the tests use that)."""

from __future__ import annotations

import asyncpg


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    # asyncpg does not accept the SQLAlchemy-style scheme; normalise it.
    url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, command_timeout=30)
    assert pool is not None
    return pool


async def ping(pool: asyncpg.Pool) -> None:
    async with pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1")
