"""/v2/watchlists: Hub's watchlists (the same lists as /api/v1/watchlists), with each symbol as
a full Alpaca asset. A list holds at most 20 symbols and names are unique per user, as in Hub."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from hub.domain.errors import NotFound
from hub.domain.watchlists import MAX_NAME, Watchlist
from hub.entrypoints.http.alpaca import params
from hub.entrypoints.http.alpaca.assets import AssetOut, assets_of
from hub.entrypoints.http.alpaca.routing import route
from hub.entrypoints.http.routing import Call

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
Symbols = Annotated[list[str], msgspec.Meta(max_length=100)]  # the domain says 20, clearly


class WatchlistOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    assets: list[AssetOut]


class CreateWatchlist(msgspec.Struct):
    name: Name
    symbols: Symbols | None = None


class UpdateWatchlist(msgspec.Struct):
    name: Name | None = None
    symbols: Symbols | None = None


class AddAsset(msgspec.Struct):
    symbol: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


async def _shaped(call: Call, lists: list[Watchlist]) -> list[WatchlistOut]:
    account = await call.hub.portfolio.cash_account(call.user_id)
    assets = await assets_of(call.hub.market_data, sorted({s for w in lists for s in w.symbols}))
    return [
        WatchlistOut(
            id=w.id,
            account_id=account.id,
            name=w.name,
            created_at=w.created_at,
            updated_at=w.updated_at,
            assets=[assets[s] for s in w.symbols if s in assets],
        )
        for w in lists
    ]


async def _one(call: Call, watchlist: Watchlist) -> WatchlistOut:
    (out,) = await _shaped(call, [watchlist])
    return out


def _id(call: Call) -> uuid.UUID:
    raw = call.request.path_params["watchlist_id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no watchlist {raw}") from None


def _symbols(raw: list[str] | None) -> list[str] | None:
    return None if raw is None else [params.symbol(s) for s in raw]


async def list_watchlists(call: Call) -> list[WatchlistOut]:
    return await _shaped(call, await call.hub.watchlists.for_user(call.user_id))


async def create(call: Call) -> WatchlistOut:
    body: CreateWatchlist = call.body
    symbols = _symbols(body.symbols) or []
    return await _one(call, await call.hub.watchlists.create(call.user_id, body.name, symbols))


async def get(call: Call) -> WatchlistOut:
    return await _one(call, await call.hub.watchlists.get(call.user_id, _id(call)))


async def update(call: Call) -> WatchlistOut:
    body: UpdateWatchlist = call.body
    updated = await call.hub.watchlists.update(
        call.user_id, _id(call), body.name, _symbols(body.symbols)
    )
    return await _one(call, updated)


async def add_asset(call: Call) -> WatchlistOut:
    body: AddAsset = call.body
    added = await call.hub.watchlists.add(call.user_id, _id(call), params.symbol(body.symbol))
    return await _one(call, added)


async def remove_asset(call: Call) -> WatchlistOut:
    symbol = params.symbol(call.request.path_params["symbol"])
    return await _one(call, await call.hub.watchlists.remove(call.user_id, _id(call), symbol))


async def delete(call: Call) -> None:
    await call.hub.watchlists.delete(call.user_id, _id(call))


ONE = "/v2/watchlists/{watchlist_id}"
ROUTES = [
    route("GET", "/v2/watchlists", list_watchlists),
    route("POST", "/v2/watchlists", create, body=CreateWatchlist),
    route("GET", ONE, get),
    route("PUT", ONE, update, body=UpdateWatchlist),
    route("POST", ONE, add_asset, body=AddAsset),
    route("DELETE", ONE, delete),
    route("DELETE", ONE + "/{symbol:path}", remove_asset),
]
