"""The PostgreSQL API key repository passes the memory twin's contract."""

from __future__ import annotations

import asyncpg
import pytest

from hub.adapters.postgres.api_keys import PostgresApiKeys
from hub.adapters.postgres.users import PostgresRegistrar
from tests.api_key_suite import ApiKeyRepositoryContract, Keys, make_key
from tests.contracts import make_account, make_user

pytestmark = pytest.mark.integration


class TestPostgresApiKeys(ApiKeyRepositoryContract):
    @pytest.fixture
    async def keys(self, pool: asyncpg.Pool) -> Keys:
        users = []
        for _ in range(2):
            user = make_user()
            await PostgresRegistrar(pool).add_user_with_account(user, make_account(user))
            users.append(user.id)
        return Keys(PostgresApiKeys(pool), users[0], users[1])


async def test_only_the_hash_is_stored(pool: asyncpg.Pool) -> None:
    user = make_user()
    await PostgresRegistrar(pool).add_user_with_account(user, make_account(user))
    key = make_key(user.id)
    await PostgresApiKeys(pool).add(key, 10)
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", key.id)
    assert row is not None and row["secret_hash"] == key.secret_hash
    assert set(row.keys()) == {
        "id", "user_id", "name", "key_id", "secret_hash", "created_at", "revoked_at"
    }  # fmt: skip


async def test_keys_go_with_their_user(pool: asyncpg.Pool) -> None:
    user = make_user()
    await PostgresRegistrar(pool).add_user_with_account(user, make_account(user))
    repo = PostgresApiKeys(pool)
    key = make_key(user.id)
    await repo.add(key, 10)
    await pool.execute("DELETE FROM users WHERE id = $1", user.id)
    assert await repo.by_key_id(key.key_id) is None
