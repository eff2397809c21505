"""The PostgreSQL bar store passes the memory twin's contract, the feed builds bars over it as
over the memory store, and the schema guards a bar's shape."""

from __future__ import annotations

import asyncpg
import pytest
from msgspec.structs import replace

from hub.adapters.postgres.bars import PostgresBars
from hub.domain.bars import Timeframe
from tests.bar_feed_suite import BarFeedContract
from tests.bars_suite import BarStoreContract, make

pytestmark = pytest.mark.integration


class TestPostgresBars(BarStoreContract):
    @pytest.fixture
    def store(self, pool: asyncpg.Pool) -> PostgresBars:
        return PostgresBars(pool)


class TestPostgresBarFeed(BarFeedContract):
    @pytest.fixture
    def store(self, pool: asyncpg.Pool) -> PostgresBars:
        return PostgresBars(pool)


async def test_the_schema_refuses_a_malformed_bar(pool: asyncpg.Pool) -> None:
    store = PostgresBars(pool)
    bar = make(0)
    with pytest.raises(asyncpg.CheckViolationError):
        await store.upsert([replace(bar, h=bar.o - 1)])
    with pytest.raises(asyncpg.CheckViolationError):
        await store.upsert([replace(bar, as_of=bar.t.replace(year=2000))])
    with pytest.raises(asyncpg.CheckViolationError):
        await store.upsert([replace(bar, timeframe="2Min")])
    assert await store.query("AAPL", Timeframe.MINUTE, limit=10) == []
