"""Numbered SQL migrations (sql/migrations/NNNN_name.sql), applied in order, each in its own
transaction and recorded in schema_migrations, so running them again changes nothing.
An advisory lock keeps two processes from migrating at once."""

from __future__ import annotations

import asyncpg

from hub.adapters.sql_files import sql_folder

_LOCK_ID = 0x4855_4221  # "HUB!": any constant shared by every migrating process


def available() -> list[tuple[str, str]]:
    """(version, sql) of every migration shipped with the package, in order."""
    folder = sql_folder() / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing; return the versions applied now."""
    await conn.execute("SELECT pg_advisory_lock($1, hashtext(current_schema()))", _LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied: list[str] = []
        for version, sql in available():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext(current_schema()))", _LOCK_ID)


async def pending(conn: asyncpg.Connection) -> list[str]:
    """Versions shipped but not yet applied (empty when the schema is current)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done: set[str] = set()
    if exists:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return [version for version, _ in available() if version not in done]
