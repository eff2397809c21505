"""Watchlists in PostgreSQL (symbols as an ordered text array, at most 20 by CHECK)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from hub.domain.errors import WatchlistNameTaken
from hub.domain.watchlists import Watchlist

_COLUMNS = "id, user_id, name, symbols, created_at, updated_at"


def _watchlist(row: asyncpg.Record) -> Watchlist:
    return Watchlist(**{**dict(row), "symbols": tuple(row["symbols"])})


class PostgresWatchlists:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def for_user(self, user_id: UUID) -> list[Watchlist]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM watchlists WHERE user_id = $1 ORDER BY created_at, id",
            user_id,
        )
        return [_watchlist(r) for r in rows]

    async def get(self, user_id: UUID, watchlist_id: UUID) -> Watchlist | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM watchlists WHERE id = $1 AND user_id = $2",
            watchlist_id,
            user_id,
        )
        return None if row is None else _watchlist(row)

    async def add(self, watchlist: Watchlist) -> None:
        try:
            await self._pool.execute(
                f"INSERT INTO watchlists ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)",
                watchlist.id,
                watchlist.user_id,
                watchlist.name,
                list(watchlist.symbols),
                watchlist.created_at,
                watchlist.updated_at,
            )
        except asyncpg.UniqueViolationError as exc:
            raise WatchlistNameTaken(f"a watchlist named {watchlist.name!r} exists") from exc

    async def save(self, watchlist: Watchlist) -> None:
        try:
            await self._pool.execute(
                "UPDATE watchlists SET name = $3, symbols = $4, updated_at = $5"
                " WHERE id = $1 AND user_id = $2",
                watchlist.id,
                watchlist.user_id,
                watchlist.name,
                list(watchlist.symbols),
                watchlist.updated_at,
            )
        except asyncpg.UniqueViolationError as exc:
            raise WatchlistNameTaken(f"a watchlist named {watchlist.name!r} exists") from exc

    async def delete(self, user_id: UUID, watchlist_id: UUID) -> bool:
        status: str = await self._pool.execute(
            "DELETE FROM watchlists WHERE id = $1 AND user_id = $2", watchlist_id, user_id
        )
        return status == "DELETE 1"
