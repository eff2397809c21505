"""Instruments and market data: GET /api/v1/instruments[/{symbol}], GET /api/v1/market-data,
and the admin cache routes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from hub.domain.instruments import Instrument
from hub.domain.numeric import parse_int
from hub.entrypoints.http.routing import Call, Handler, Operation, Param, operation
from hub.services.market_data import MarketData, parse_symbols
from hub.services.views import QuoteView


class InstrumentOut(msgspec.Struct):
    symbol: str
    name: str
    category: str
    currency: str
    tick_size: Decimal
    lot_size: Decimal
    tradable: bool

    @classmethod
    def of(cls, i: Instrument) -> InstrumentOut:
        return cls(
            i.symbol, i.name, i.category.value, i.currency, i.tick_size, i.lot_size, i.tradable
        )


class MarketDataOut(msgspec.Struct):
    symbol: str
    name: str
    category: str
    currency: str
    quote: QuoteView | None

    @classmethod
    def of(cls, md: MarketData) -> MarketDataOut:
        i = md.instrument
        quote = QuoteView.of(md.quote) if md.quote is not None else None
        return cls(i.symbol, i.name, i.category.value, i.currency, quote)


class MarketDataResponse(msgspec.Struct):
    data: list[MarketDataOut]
    unknown_symbols: list[str]


class SymbolsRequest(msgspec.Struct, forbid_unknown_fields=True):
    symbols: Annotated[list[str], msgspec.Meta(min_length=1, max_length=100)]


class CacheResult(msgspec.Struct):
    message: str
    symbols: list[str]
    count: int
    status: str = "success"


def _limit(call: Call, default: int = 50, maximum: int = 500) -> int:
    raw = call.request.query_params.get("limit")
    if raw is None:
        return default
    return parse_int(raw, "limit", minimum=1, maximum=maximum)


async def list_instruments(call: Call) -> list[InstrumentOut]:
    found = await call.hub.market_data.search(call.request.query_params.get("q"), _limit(call))
    return [InstrumentOut.of(i) for i in found]


async def get_instrument(call: Call) -> InstrumentOut:
    symbol = parse_symbols(call.request.path_params["symbol"])[0]
    return InstrumentOut.of(await call.hub.market_data.instrument(symbol))


async def market_data(call: Call) -> MarketDataResponse:
    symbols = parse_symbols(call.request.query_params.get("symbols"))
    found = await call.hub.market_data.market_data(symbols)
    known = {md.instrument.symbol for md in found}
    return MarketDataResponse(
        [MarketDataOut.of(md) for md in found], [s for s in symbols if s not in known]
    )


def _admin_symbols(call: Call) -> list[str]:
    body: SymbolsRequest | None = call.body
    if body is not None:
        return parse_symbols(body.symbols)
    return parse_symbols(call.request.query_params.get("symbols"))


async def invalidate(call: Call) -> CacheResult:
    symbols = _admin_symbols(call)
    count = await call.hub.market_data.invalidate(symbols)
    return CacheResult("cache invalidated", symbols, count)


async def warm(call: Call) -> CacheResult:
    symbols = _admin_symbols(call)
    count = await call.hub.market_data.warm(symbols)
    return CacheResult("cache warmed", symbols, count)


TAGS = ("market data",)
SYMBOLS = Param("symbols", "comma-separated symbols, e.g. AAPL,MSFT (at most 100)", True)
ADMIN_SYMBOLS = Param("symbols", "comma-separated symbols (or a JSON body {symbols: [...]})")


def _cache_admin(action: str, handler: Handler, summary: str) -> Operation:
    return operation(
        "POST",
        f"/api/v1/admin/market-data/cache/{action}",
        handler,
        summary,
        request=SymbolsRequest,
        optional_body=True,
        response=CacheResult,
        admin=True,
        tags=("admin",),
        errors=(401, 403, 422),
        query=(ADMIN_SYMBOLS,),
    )


OPERATIONS: list[Operation] = [
    operation(
        "GET",
        "/api/v1/instruments",
        list_instruments,
        "List instruments, or search them by symbol prefix or name (?q=)",
        response=list[InstrumentOut],
        tags=TAGS,
        errors=(401, 422),
        query=(Param("q", "search text"), Param("limit", "1..500, default 50")),
    ),
    operation(
        "GET",
        "/api/v1/instruments/{symbol}",
        get_instrument,
        "One instrument",
        response=InstrumentOut,
        tags=TAGS,
        errors=(401, 404, 422),
    ),
    operation(
        "GET",
        "/api/v1/market-data",
        market_data,
        "Latest quote and instrument details per symbol",
        response=MarketDataResponse,
        tags=TAGS,
        errors=(401, 422),
        query=(SYMBOLS,),
    ),
    _cache_admin("invalidate", invalidate, "Drop symbols from the instrument cache (admin)"),
    _cache_admin("warm", warm, "Load symbols into the instrument cache (admin)"),
]
