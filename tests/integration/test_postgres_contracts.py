"""The Postgres adapters pass the same contracts as the memory twins."""

from __future__ import annotations

import asyncpg
import pytest

from hub.adapters.postgres.users import (
    PostgresAccounts,
    PostgresRefreshTokens,
    PostgresRegistrar,
    PostgresUsers,
)
from tests.contracts import Ports, RepositoryContract, make_account, make_user

pytestmark = pytest.mark.integration


class TestPostgresRepositories(RepositoryContract):
    @pytest.fixture
    def ports(self, pool: asyncpg.Pool) -> Ports:
        return Ports(
            PostgresUsers(pool),
            PostgresRegistrar(pool),
            PostgresRefreshTokens(pool),
            PostgresAccounts(pool),
        )


async def test_cash_cannot_go_negative(pool: asyncpg.Pool) -> None:
    """The schema itself keeps money safe, whatever the code above it does."""
    user = make_user()
    await PostgresRegistrar(pool).add_user_with_account(user, make_account(user, "10.00"))
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("UPDATE accounts SET cash = cash - 10.01 WHERE user_id = $1", user.id)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("UPDATE accounts SET reserved_cash = 11 WHERE user_id = $1", user.id)
