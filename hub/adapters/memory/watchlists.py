"""Watchlists in process memory."""

from __future__ import annotations

from uuid import UUID

from hub.domain.errors import WatchlistNameTaken
from hub.domain.watchlists import Watchlist


class MemoryWatchlists:
    def __init__(self) -> None:
        self._by_id: dict[UUID, Watchlist] = {}

    def _name_taken(self, watchlist: Watchlist) -> bool:
        return any(
            w.user_id == watchlist.user_id and w.name == watchlist.name and w.id != watchlist.id
            for w in self._by_id.values()
        )

    async def for_user(self, user_id: UUID) -> list[Watchlist]:
        mine = [w for w in self._by_id.values() if w.user_id == user_id]
        return sorted(mine, key=lambda w: (w.created_at, w.id))

    async def get(self, user_id: UUID, watchlist_id: UUID) -> Watchlist | None:
        found = self._by_id.get(watchlist_id)
        return found if found is not None and found.user_id == user_id else None

    async def add(self, watchlist: Watchlist) -> None:
        if self._name_taken(watchlist):
            raise WatchlistNameTaken(f"a watchlist named {watchlist.name!r} exists")
        self._by_id[watchlist.id] = watchlist

    async def save(self, watchlist: Watchlist) -> None:
        await self.add(watchlist)

    async def delete(self, user_id: UUID, watchlist_id: UUID) -> bool:
        if await self.get(user_id, watchlist_id) is None:
            return False
        del self._by_id[watchlist_id]
        return True
