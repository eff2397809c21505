"""The original Go server's routes, same paths and JSON shapes, served by the same services, so
its clients keep working. They answer any method, as the original's HandleFunc routes did, but
errors are problem JSON (the original sent plain text) and auth has no localhost bypass."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from hub.domain.instruments import Category
from hub.entrypoints.http.routing import Call, Operation, Param, operation
from hub.services.market_data import MarketData, parse_symbols

ANY = ("GET", "POST", "PUT", "PATCH", "DELETE")
# The original stored category as an integer: 1 stock, 2 ETF; crypto is new here.
CATEGORY_CODE = {Category.STOCK: 1, Category.ETF: 2, Category.CRYPTO: 3}
# Go encoded its float64 fields as JSON numbers; we keep the shape but write the exact decimal.
_numbers = msgspec.json.Encoder(decimal_format="number")


def json_numbers(body: Any, status: int = 200) -> Response:
    return Response(_numbers.encode(body), status, media_type="application/json")


class LegacyMarketData(
    msgspec.Struct,
    rename={"symbol": "Symbol", "name": "Name", "last_quote": "LastQuote", "category": "Category"},
):
    symbol: str
    name: str
    last_quote: Any
    category: int


def legacy_market_data(items: list[MarketData]) -> list[dict[str, Any]]:
    return [
        {
            "Symbol": md.instrument.symbol,
            "Name": md.instrument.name,
            "LastQuote": md.quote.last if md.quote else 0,
            "Category": CATEGORY_CODE[md.instrument.category],
        }
        for md in items
    ]


async def get_market_data(call: Call) -> Response:
    symbols = parse_symbols(call.request.query_params.get("symbols"))
    return json_numbers(legacy_market_data(await call.hub.market_data.market_data(symbols)))


TAGS = ("legacy",)
OPERATIONS: list[Operation] = [
    operation(
        "GET",
        "/getMarketData",
        get_market_data,
        "Legacy: [{Symbol, Name, LastQuote, Category}] for ?symbols=",
        response=list[LegacyMarketData],
        tags=TAGS,
        methods=ANY[1:],
        errors=(401, 422),
        query=(Param("symbols", "comma-separated symbols", True),),
    ),
]
