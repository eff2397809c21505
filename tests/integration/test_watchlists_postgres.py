"""The PostgreSQL watchlist repository passes the memory twin's contract."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from hub.adapters.postgres.users import PostgresRegistrar
from hub.adapters.postgres.watchlists import PostgresWatchlists
from tests.contracts import make_account, make_user
from tests.watchlist_suite import WatchlistRepositoryContract

pytestmark = pytest.mark.integration


class TestPostgresWatchlists(WatchlistRepositoryContract):
    @pytest.fixture
    async def repo(self, pool: asyncpg.Pool) -> PostgresWatchlists:
        for attr in ("user_id", "other_id"):
            user = make_user()
            await PostgresRegistrar(pool).add_user_with_account(user, make_account(user))
            setattr(self, attr, user.id)
        return PostgresWatchlists(pool)

    user_id = uuid.uuid4()
    other_id = uuid.uuid4()
