"""Watchlist use cases: symbols are checked against the instruments before they are stored."""

from __future__ import annotations

import uuid
from uuid import UUID

from msgspec.structs import replace

from hub.domain.errors import InvalidInput, NotFound
from hub.domain.watchlists import (
    DEFAULT_NAME,
    DEFAULT_SYMBOLS,
    Watchlist,
    add_symbol,
    clean_name,
    remove_symbol,
    with_symbols,
)
from hub.services.market_data import MarketDataService, parse_symbols
from hub.services.ports import Clock, UserRepository, WatchlistRepository


class WatchlistService:
    def __init__(
        self,
        repo: WatchlistRepository,
        market_data: MarketDataService,
        clock: Clock,
        users: UserRepository,
    ) -> None:
        self._repo = repo
        self._users = users
        self._market_data = market_data
        self._clock = clock

    async def _known(self, symbols: list[str]) -> tuple[str, ...]:
        if not symbols:
            return ()
        cleaned = parse_symbols(symbols)
        found = await self._market_data.instruments(cleaned)
        unknown = [s for s in cleaned if s not in found]
        if unknown:
            raise InvalidInput(f"unknown symbols: {', '.join(unknown)}", field="symbols")
        return tuple(cleaned)

    async def for_user(self, user_id: UUID) -> list[Watchlist]:
        return await self._repo.for_user(user_id)

    async def get(self, user_id: UUID, watchlist_id: UUID) -> Watchlist:
        found = await self._repo.get(user_id, watchlist_id)
        if found is None:
            raise NotFound(f"no watchlist {watchlist_id}")
        return found

    async def create(self, user_id: UUID, name: str, symbols: list[str]) -> Watchlist:
        # A token outlives its user (it is checked by signature, not against the database). The
        # other writes find nothing of a deleted user (their rows went with it), but a create would
        # store a list for nobody (or hit the foreign key in Postgres): refuse it as /auth/me does.
        if await self._users.get(user_id) is None:
            raise NotFound("the user of this token no longer exists")
        now = self._clock.now()
        empty = Watchlist(
            id=uuid.uuid4(),
            user_id=user_id,
            name=clean_name(name),
            symbols=(),
            created_at=now,
            updated_at=now,
        )
        watchlist = with_symbols(empty, await self._known(symbols), now)
        await self._repo.add(watchlist)
        return watchlist

    async def create_default(self, user_id: UUID) -> Watchlist:
        return await self.create(user_id, DEFAULT_NAME, list(DEFAULT_SYMBOLS))

    async def update(
        self, user_id: UUID, watchlist_id: UUID, name: str | None, symbols: list[str] | None
    ) -> Watchlist:
        watchlist = await self.get(user_id, watchlist_id)
        now = self._clock.now()
        if name is not None:
            watchlist = replace(watchlist, name=clean_name(name), updated_at=now)
        if symbols is not None:
            watchlist = with_symbols(watchlist, await self._known(symbols), now)
        await self._repo.save(watchlist)
        return watchlist

    async def delete(self, user_id: UUID, watchlist_id: UUID) -> None:
        if not await self._repo.delete(user_id, watchlist_id):
            raise NotFound(f"no watchlist {watchlist_id}")

    async def add(self, user_id: UUID, watchlist_id: UUID, symbol: str) -> Watchlist:
        (known,) = await self._known([symbol])
        watchlist = add_symbol(await self.get(user_id, watchlist_id), known, self._clock.now())
        await self._repo.save(watchlist)
        return watchlist

    async def remove(self, user_id: UUID, watchlist_id: UUID, symbol: str) -> Watchlist:
        watchlist = await self.get(user_id, watchlist_id)
        (cleaned,) = parse_symbols(symbol)
        if cleaned not in watchlist.symbols:
            raise NotFound(f"{cleaned} is not in this watchlist")
        watchlist = remove_symbol(watchlist, cleaned, self._clock.now())
        await self._repo.save(watchlist)
        return watchlist
