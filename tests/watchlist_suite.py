"""Contract of the watchlist repositories (memory and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from msgspec.structs import replace

from hub.domain.errors import WatchlistNameTaken
from hub.domain.watchlists import Watchlist
from hub.services.ports import WatchlistRepository

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def make(
    user_id: uuid.UUID, name: str, at: datetime = T0, symbols: tuple[str, ...] = ()
) -> Watchlist:
    return Watchlist(
        id=uuid.uuid4(), user_id=user_id, name=name, symbols=symbols, created_at=at, updated_at=at
    )


class WatchlistRepositoryContract:
    user_id: uuid.UUID
    other_id: uuid.UUID

    async def test_round_trip_in_creation_order(self, repo: WatchlistRepository) -> None:
        second = make(self.user_id, "b", T0 + timedelta(seconds=1), ("VOO", "AAPL"))
        first = make(self.user_id, "a", T0, ("MSFT",))
        await repo.add(second)
        await repo.add(first)
        assert await repo.for_user(self.user_id) == [first, second]
        assert await repo.get(self.user_id, second.id) == second
        assert (await repo.get(self.user_id, second.id)).symbols == ("VOO", "AAPL")  # type: ignore[union-attr]

    async def test_other_users_lists_are_invisible(self, repo: WatchlistRepository) -> None:
        mine = make(self.user_id, "mine")
        await repo.add(mine)
        assert await repo.get(self.other_id, mine.id) is None
        assert await repo.for_user(self.other_id) == []
        assert not await repo.delete(self.other_id, mine.id)
        assert await repo.get(self.user_id, mine.id) == mine

    async def test_names_are_unique_per_user(self, repo: WatchlistRepository) -> None:
        await repo.add(make(self.user_id, "tech"))
        with pytest.raises(WatchlistNameTaken):
            await repo.add(make(self.user_id, "tech"))
        await repo.add(make(self.other_id, "tech"))
        other = make(self.user_id, "energy")
        await repo.add(other)
        with pytest.raises(WatchlistNameTaken):
            await repo.save(replace(other, name="tech"))

    async def test_save_and_delete(self, repo: WatchlistRepository) -> None:
        w = make(self.user_id, "x")
        await repo.add(w)
        changed = replace(w, name="y", symbols=("AAPL",), updated_at=T0 + timedelta(minutes=1))
        await repo.save(changed)
        assert await repo.get(self.user_id, w.id) == changed
        assert await repo.delete(self.user_id, w.id)
        assert await repo.get(self.user_id, w.id) is None
        assert not await repo.delete(self.user_id, w.id)
