"""GET /v2/assets and /v2/assets/{symbol_or_asset_id}: Hub's instruments as Alpaca assets.

An asset's id is a UUID derived from its symbol (uuid5), so it is the same on every node and
after every restart without being stored. Hub lists no exchange for stocks and ETFs (it is its
own simulated venue), so their `exchange` is Alpaca's empty value; crypto's is CRYPTO.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import msgspec

from hub.domain.errors import NotFound
from hub.domain.instruments import Category, Instrument
from hub.entrypoints.http.alpaca import params
from hub.entrypoints.http.alpaca.routing import route
from hub.entrypoints.http.routing import Call
from hub.services.market_data import MAX_LISTING, MarketDataService

ASSET_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:hub:asset")


def asset_id(symbol: str) -> uuid.UUID:
    return uuid.uuid5(ASSET_NAMESPACE, symbol)


def asset_class(category: Category) -> str:
    return "crypto" if category is Category.CRYPTO else "us_equity"


def exchange(category: Category) -> str:
    return "CRYPTO" if category is Category.CRYPTO else ""


class AssetOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    asset_class: str = msgspec.field(name="class")
    exchange: str
    symbol: str
    name: str
    status: str
    tradable: bool
    marginable: bool = False  # no margin: buying power is cash
    shortable: bool = False  # no short selling
    easy_to_borrow: bool = False
    fractionable: bool
    min_order_size: Decimal
    min_trade_increment: Decimal
    price_increment: Decimal
    maintenance_margin_requirement: int = 100
    attributes: list[str] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, i: Instrument) -> AssetOut:
        return cls(
            id=asset_id(i.symbol),
            asset_class=asset_class(i.category),
            exchange=exchange(i.category),
            symbol=i.symbol,
            name=i.name,
            status="active" if i.tradable else "inactive",
            tradable=i.tradable,
            fractionable=i.lot_size < 1,
            min_order_size=i.lot_size,
            min_trade_increment=i.lot_size,
            price_increment=i.tick_size,
        )


async def resolve(market_data: MarketDataService, symbol_or_id: str) -> Instrument:
    """The instrument a path names, by symbol (BTC/USD is BTC-USD) or by asset id."""
    try:
        wanted = uuid.UUID(symbol_or_id)
    except ValueError:
        return await market_data.instrument(params.symbol(symbol_or_id))
    for instrument in await market_data.search(None, MAX_LISTING):
        if asset_id(instrument.symbol) == wanted:
            return instrument
    raise NotFound(f"no asset {symbol_or_id}")


async def assets_of(market_data: MarketDataService, symbols: list[str]) -> dict[str, AssetOut]:
    found = await market_data.instruments(symbols) if symbols else {}
    return {s: AssetOut.of(i) for s, i in found.items()}


async def list_assets(call: Call) -> list[AssetOut]:
    query = dict(call.request.query_params)
    status = query.get("status", "").lower()
    wanted_class = query.get("asset_class", "").lower()
    wanted_exchange = query.get("exchange", "").upper()
    listed = [AssetOut.of(i) for i in await call.hub.market_data.search(None, MAX_LISTING)]
    return [
        a
        for a in listed
        if (not status or a.status == status)
        and (not wanted_class or a.asset_class == wanted_class)
        and (not wanted_exchange or a.exchange == wanted_exchange)
    ]


async def get_asset(call: Call) -> AssetOut:
    found = await resolve(call.hub.market_data, call.request.path_params["symbol_or_id"])
    return AssetOut.of(found)


ROUTES = [
    route("GET", "/v2/assets", list_assets),
    route("GET", "/v2/assets/{symbol_or_id:path}", get_asset),
]
