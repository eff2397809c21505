"""Alpaca's latest-data routes under /v2/stocks: the latest quote, trade and minute bar of some
symbols (or one), and snapshots. alpaca-py's StockHistoricalDataClient reaches them with
`url_override` set to Hub's URL (it adds /v2 itself).

They read the same MarketDataService as /api/v1: quotes from the quote store, bars through its
recent-bars cache. Unknown symbols, and symbols without a quote yet, are left out of a multi-
symbol answer (as Alpaca leaves out symbols it has no data for); a one-symbol route answers 404.
Price history with paging is in bars.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.responses import Response

from hub.domain.bars import Timeframe
from hub.domain.errors import InvalidInput, NotFound
from hub.domain.quotes import Quote
from hub.entrypoints.http.alpaca import params
from hub.entrypoints.http.alpaca.data_shapes import JSON, BarOut, QuoteOut, SnapshotOut, TradeOut
from hub.entrypoints.http.alpaca.routing import route
from hub.entrypoints.http.routing import Call
from hub.services.market_data import MarketDataService


def answer(content: Any) -> Response:
    """Market data in Alpaca's encoding: numbers as JSON numbers (with Hub's exact digits)."""
    return Response(JSON.encode(content), media_type="application/json")


def check_query(query: dict[str, str]) -> None:
    """Parameters Hub takes but cannot vary: any `feed` (Hub has one), `currency` USD only."""
    currency = query.get("currency", "").strip().upper()
    if currency not in ("", "USD"):
        raise InvalidInput(
            "currency must be USD: Hub prices everything in US dollars", field="currency"
        )


def symbols_of(call: Call) -> list[str]:
    query = dict(call.request.query_params)
    check_query(query)
    return params.symbols(query.get("symbols", ""))


def path_symbol(call: Call) -> str:
    check_query(dict(call.request.query_params))
    return params.symbol(call.request.path_params["symbol"])


async def quotes_of(market_data: MarketDataService, symbols: list[str]) -> dict[str, Quote]:
    """The latest quote of every known symbol that has one, in request order."""
    found = await market_data.market_data(symbols)
    return {md.instrument.symbol: md.quote for md in found if md.quote is not None}


async def _latest_quotes(call: Call) -> Response:
    quotes = await quotes_of(call.hub.market_data, symbols_of(call))
    return answer({"quotes": {s: QuoteOut.of(q) for s, q in quotes.items()}})


async def _latest_trades(call: Call) -> Response:
    quotes = await quotes_of(call.hub.market_data, symbols_of(call))
    return answer({"trades": {s: TradeOut.of(q) for s, q in quotes.items()}})


async def _one_quote(call: Call, shape: Callable[[Quote], Any], key: str) -> Response:
    symbol = path_symbol(call)
    quotes = await quotes_of(call.hub.market_data, [symbol])
    if symbol not in quotes:
        raise NotFound(f"no quote for {symbol}")
    return answer({"symbol": symbol, key: shape(quotes[symbol])})


async def _latest_quote(call: Call) -> Response:
    return await _one_quote(call, QuoteOut.of, "quote")


async def _latest_trade(call: Call) -> Response:
    return await _one_quote(call, TradeOut.of, "trade")


async def _newest(
    market_data: MarketDataService, symbol: str, timeframe: Timeframe, n: int
) -> list[BarOut]:
    """The newest `n` bars (the last one may still be forming), oldest first."""
    series = await market_data.bars(symbol, timeframe, limit=n)
    return [BarOut.of(b) for b in series.bars]


async def _known(market_data: MarketDataService, symbols: list[str]) -> list[str]:
    found = await market_data.instruments(symbols)
    return [s for s in symbols if s in found]


async def _latest_bars(call: Call) -> Response:
    md = call.hub.market_data
    known = await _known(md, symbols_of(call))
    newest = await asyncio.gather(*(_newest(md, s, Timeframe.MINUTE, 1) for s in known))
    return answer({"bars": {s: bars[-1] for s, bars in zip(known, newest, strict=True) if bars}})


async def _latest_bar(call: Call) -> Response:
    symbol = path_symbol(call)
    bars = await _newest(call.hub.market_data, symbol, Timeframe.MINUTE, 1)
    if not bars:
        raise NotFound(f"no bar for {symbol}")
    return answer({"symbol": symbol, "bar": bars[-1]})


async def snapshot(market_data: MarketDataService, symbol: str, quote: Quote | None) -> SnapshotOut:
    minute, days = await asyncio.gather(
        _newest(market_data, symbol, Timeframe.MINUTE, 1),
        _newest(market_data, symbol, Timeframe.DAY, 2),
    )
    return SnapshotOut(
        latest_trade=TradeOut.of(quote) if quote is not None else None,
        latest_quote=QuoteOut.of(quote) if quote is not None else None,
        minute_bar=minute[-1] if minute else None,
        daily_bar=days[-1] if days else None,
        prev_daily_bar=days[-2] if len(days) > 1 else None,
    )


async def _snapshots(call: Call) -> Response:
    md = call.hub.market_data
    symbols = symbols_of(call)
    found = await md.market_data(symbols)
    shots = await asyncio.gather(*(snapshot(md, d.instrument.symbol, d.quote) for d in found))
    # Alpaca's answer is keyed by symbol at the top level, with no wrapping key.
    return answer({d.instrument.symbol: shot for d, shot in zip(found, shots, strict=True)})


class _SymbolSnapshot(SnapshotOut, kw_only=True, rename="camel"):
    symbol: str


async def _snapshot(call: Call) -> Response:
    symbol = path_symbol(call)
    md = call.hub.market_data
    await md.instrument(symbol)  # NotFound for an unknown symbol
    quotes = await quotes_of(md, [symbol])
    shot = await snapshot(md, symbol, quotes.get(symbol))
    return answer(_SymbolSnapshot(symbol=symbol, **msgspec.structs.asdict(shot)))


ROUTES = [
    route("GET", "/v2/stocks/quotes/latest", _latest_quotes),
    route("GET", "/v2/stocks/trades/latest", _latest_trades),
    route("GET", "/v2/stocks/bars/latest", _latest_bars),
    route("GET", "/v2/stocks/snapshots", _snapshots),
    route("GET", "/v2/stocks/{symbol}/quotes/latest", _latest_quote),
    route("GET", "/v2/stocks/{symbol}/trades/latest", _latest_trade),
    route("GET", "/v2/stocks/{symbol}/bars/latest", _latest_bar),
    route("GET", "/v2/stocks/{symbol}/snapshot", _snapshot),
]
