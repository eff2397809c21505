"""API keys in PostgreSQL. Adding one locks the user's row for the count, so two concurrent
adds cannot both slip under the limit."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from hub.domain.api_keys import ApiKey
from hub.domain.errors import NotFound, TooManyApiKeys

_COLUMNS = "id, user_id, name, key_id, secret_hash, created_at, revoked_at"
# Runs after the user's row is locked, so its snapshot sees every add committed before.
_INSERT_UNDER_LIMIT = (
    f"INSERT INTO api_keys ({_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, NULL"
    " WHERE (SELECT count(*) FROM api_keys WHERE user_id = $2 AND revoked_at IS NULL) < $7"
)


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(**dict(row))


class PostgresApiKeys:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, key: ApiKey, limit: int) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            owner = await conn.fetchval(
                "SELECT id FROM users WHERE id = $1 FOR UPDATE", key.user_id
            )
            if owner is None:
                raise NotFound("the user of this token no longer exists")
            status: str = await conn.execute(
                _INSERT_UNDER_LIMIT,
                key.id,
                key.user_id,
                key.name,
                key.key_id,
                key.secret_hash,
                key.created_at,
                limit,
            )
        if status == "INSERT 0 0":
            raise TooManyApiKeys(f"at most {limit} API keys per user: revoke one first")

    async def for_user(self, user_id: UUID) -> list[ApiKey]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL"
            " ORDER BY created_at, id",
            user_id,
        )
        return [_key(row) for row in rows]

    async def by_key_id(self, key_id: str) -> ApiKey | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = $1", key_id
        )
        return None if row is None else _key(row)

    async def revoke(self, user_id: UUID, key_id: UUID, at: datetime) -> ApiKey | None:
        row = await self._pool.fetchrow(
            f"UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND user_id = $2"
            f" AND revoked_at IS NULL RETURNING {_COLUMNS}",
            key_id,
            user_id,
            at,
        )
        return None if row is None else _key(row)
