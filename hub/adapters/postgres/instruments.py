"""Instruments in PostgreSQL, and the seed loader `hub migrate` runs after the migrations."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from hub.adapters.seed import seed_instruments
from hub.domain.instruments import Category, Instrument

_COLUMNS = "symbol, name, category, currency, tick_size, lot_size, tradable"


def _instrument(row: asyncpg.Record) -> Instrument:
    return Instrument(**{**dict(row), "category": Category(row["category"])})


class PostgresInstruments:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get_many(self, symbols: Iterable[str]) -> dict[str, Instrument]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM instruments WHERE symbol = ANY($1::text[])", list(symbols)
        )
        return {row["symbol"]: _instrument(row) for row in rows}

    async def search(self, query: str | None, limit: int) -> list[Instrument]:
        q = (query or "").strip().lower()
        # Symbol-prefix matches first, then name matches; LIKE metacharacters are escaped.
        pattern = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM instruments"
            " WHERE $1 = '' OR lower(symbol) LIKE $2 || '%' OR lower(name) LIKE '%' || $2 || '%'"
            " ORDER BY NOT lower(symbol) LIKE $2 || '%', symbol LIMIT $3",
            q,
            pattern,
            limit,
        )
        return [_instrument(row) for row in rows]


async def load_seed(conn: asyncpg.Connection) -> int:
    """Insert the seed instruments that are missing; never overwrite an operator's edits."""
    rows = [
        (i.symbol, i.name, i.category.value, i.currency, i.tick_size, i.lot_size, i.tradable)
        for i in (s.instrument for s in seed_instruments())
    ]
    before = await conn.fetchval("SELECT count(*) FROM instruments")
    await conn.executemany(
        f"INSERT INTO instruments ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (symbol) DO NOTHING",
        rows,
    )
    after: int = await conn.fetchval("SELECT count(*) FROM instruments")
    return after - int(before)
