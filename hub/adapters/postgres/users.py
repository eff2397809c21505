"""Users, accounts and refresh tokens in PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from hub.domain.accounts import Account
from hub.domain.errors import EmailTaken
from hub.domain.tokens import RefreshToken
from hub.domain.users import Role, User

_USER_COLUMNS = "id, email, name, password_hash, role, created_at"
_TOKEN_COLUMNS = "id, user_id, family_id, token_hash, created_at, expires_at, used_at, revoked_at"


def _user(row: asyncpg.Record) -> User:
    return User(**{**dict(row), "role": Role(row["role"])})


async def _insert_user(conn: asyncpg.Connection | asyncpg.Pool, user: User) -> None:
    try:
        await conn.execute(
            f"INSERT INTO users ({_USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)",
            user.id,
            user.email,
            user.name,
            user.password_hash,
            user.role.value,
            user.created_at,
        )
    except asyncpg.UniqueViolationError as exc:
        raise EmailTaken(f"{user.email} is already registered") from exc


async def _insert_account(conn: asyncpg.Connection | asyncpg.Pool, account: Account) -> None:
    await conn.execute(
        "INSERT INTO accounts (id, user_id, cash, reserved_cash, currency, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        account.id,
        account.user_id,
        account.cash,
        account.reserved_cash,
        account.currency,
        account.created_at,
    )


class PostgresUsers:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, user: User) -> None:
        await _insert_user(self._pool, user)

    async def get(self, user_id: UUID) -> User | None:
        row = await self._pool.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1",
            user_id,
        )
        return None if row is None else _user(row)

    async def by_email(self, email: str) -> User | None:
        row = await self._pool.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM users WHERE email = $1",
            email,
        )
        return None if row is None else _user(row)

    async def set_role(self, email: str, role: Role) -> bool:
        status: str = await self._pool.execute(
            "UPDATE users SET role = $2 WHERE email = $1", email, role.value
        )
        return status != "UPDATE 0"


class PostgresAccounts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, account: Account) -> None:
        await _insert_account(self._pool, account)

    async def for_user(self, user_id: UUID) -> Account | None:
        row = await self._pool.fetchrow(
            "SELECT id, user_id, cash, reserved_cash, currency, created_at"
            " FROM accounts WHERE user_id = $1",
            user_id,
        )
        return None if row is None else Account(**dict(row))


class PostgresRegistrar:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_user_with_account(self, user: User, account: Account) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await _insert_user(conn, user)
            await _insert_account(conn, account)


class PostgresRefreshTokens:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, token: RefreshToken) -> None:
        await self._pool.execute(
            f"INSERT INTO refresh_tokens ({_TOKEN_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            token.id,
            token.user_id,
            token.family_id,
            token.token_hash,
            token.created_at,
            token.expires_at,
            token.used_at,
            token.revoked_at,
        )

    async def use(self, token_hash: str, now: datetime) -> RefreshToken | None:
        # The row lock taken by UPDATE serialises concurrent uses: the second caller waits,
        # then reads used_at already set, and is treated as a reuse.
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {_TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
                token_hash,
            )
            if row is None:
                return None
            if row["used_at"] is None:
                await conn.execute(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1", row["id"], now
                )
            return RefreshToken(**dict(row))

    async def revoke_family(self, family_id: UUID, now: datetime) -> None:
        await self._pool.execute(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
            family_id,
            now,
        )
