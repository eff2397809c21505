"""/api/v1/watchlists: named lists of up to 20 symbols per user."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from hub.domain.errors import NotFound
from hub.domain.watchlists import Watchlist
from hub.entrypoints.http.routing import Call, Operation, operation

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Symbols = Annotated[list[str], msgspec.Meta(max_length=20)]


class WatchlistOut(msgspec.Struct):
    id: UUID
    name: str
    symbols: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, w: Watchlist) -> WatchlistOut:
        return cls(w.id, w.name, list(w.symbols), w.created_at, w.updated_at)


class CreateWatchlist(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    symbols: Symbols = msgspec.field(default_factory=list)


class UpdateWatchlist(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    symbols: Symbols | None = None


def _id(call: Call) -> UUID:
    raw = call.request.path_params["watchlist_id"]
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"no watchlist {raw}") from None


async def list_watchlists(call: Call) -> list[WatchlistOut]:
    return [WatchlistOut.of(w) for w in await call.hub.watchlists.for_user(call.user_id)]


async def create(call: Call) -> WatchlistOut:
    body: CreateWatchlist = call.body
    return WatchlistOut.of(await call.hub.watchlists.create(call.user_id, body.name, body.symbols))


async def get(call: Call) -> WatchlistOut:
    return WatchlistOut.of(await call.hub.watchlists.get(call.user_id, _id(call)))


async def update(call: Call) -> WatchlistOut:
    body: UpdateWatchlist = call.body
    updated = await call.hub.watchlists.update(call.user_id, _id(call), body.name, body.symbols)
    return WatchlistOut.of(updated)


async def delete(call: Call) -> None:
    await call.hub.watchlists.delete(call.user_id, _id(call))


async def add_symbol(call: Call) -> WatchlistOut:
    symbol = call.request.path_params["symbol"]
    return WatchlistOut.of(await call.hub.watchlists.add(call.user_id, _id(call), symbol))


async def remove_symbol(call: Call) -> WatchlistOut:
    symbol = call.request.path_params["symbol"]
    return WatchlistOut.of(await call.hub.watchlists.remove(call.user_id, _id(call), symbol))


TAGS = ("watchlists",)
ONE = "/api/v1/watchlists/{watchlist_id}"
OPERATIONS: list[Operation] = [
    operation(
        "GET",
        "/api/v1/watchlists",
        list_watchlists,
        "The caller's watchlists",
        response=list[WatchlistOut],
        tags=TAGS,
        errors=(401,),
    ),
    operation(
        "POST",
        "/api/v1/watchlists",
        create,
        "Create a watchlist",
        request=CreateWatchlist,
        response=WatchlistOut,
        status=201,
        tags=TAGS,
        errors=(401, 409, 422),
    ),
    operation(
        "GET", ONE, get, "One watchlist", response=WatchlistOut, tags=TAGS, errors=(401, 404)
    ),
    operation(
        "PATCH",
        ONE,
        update,
        "Rename it, or replace its symbols",
        request=UpdateWatchlist,
        response=WatchlistOut,
        tags=TAGS,
        errors=(401, 404, 409, 422),
    ),
    operation("DELETE", ONE, delete, "Delete it", status=204, tags=TAGS, errors=(401, 404)),
    operation(
        "PUT",
        ONE + "/symbols/{symbol}",
        add_symbol,
        "Add a symbol (idempotent)",
        response=WatchlistOut,
        tags=TAGS,
        errors=(401, 404, 422),
    ),
    operation(
        "DELETE",
        ONE + "/symbols/{symbol}",
        remove_symbol,
        "Remove a symbol",
        response=WatchlistOut,
        tags=TAGS,
        errors=(401, 404),
    ),
]
