"""GET /api/v1/instruments/{symbol}/bars: price history as OHLCV bars (docs/market-history.md).

The most recent bars come from the market-data service's cache (services/bar_cache.py), which
hands every request of one interval the same BarSeries object; the answer's bytes are kept
beside it here, keyed by that object's identity, so a cache hit is a lookup and a write with
no encoding (a few hundred bars would otherwise cost more to encode than a quote read)."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from hub.domain.bars import Timeframe, parse_timeframe
from hub.domain.numeric import parse_int
from hub.entrypoints.http.routing import Call, Operation, Param, operation
from hub.entrypoints.http.times import time_param
from hub.services.bar_cache import BarSeries
from hub.services.market_data import DEFAULT_BARS, MAX_BARS, parse_symbol
from hub.services.views import BarView

MAX_ENCODED_BYTES = 16 * 1024 * 1024  # answers kept encoded, oldest dropped first


class BarsResponse(msgspec.Struct):
    symbol: str
    timeframe: str
    bars: list[BarView]


_Key = tuple[str, Timeframe, int]


class _Encoded:
    """The encoded answer for each cached series, valid while the service returns that very
    object (an identity check: a refilled cache entry is a new object)."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._held: dict[_Key, tuple[BarSeries, bytes]] = {}
        self._bytes = 0

    def get(self, key: _Key, series: BarSeries) -> bytes:
        held = self._held.get(key)
        if held is not None and held[0] is series:
            return held[1]
        body = encode(series)
        if held is not None:
            self._bytes -= len(self._held.pop(key)[1])
        self._held[key] = (series, body)
        self._bytes += len(body)
        while self._bytes > self._max_bytes:
            self._bytes -= len(self._held.pop(next(iter(self._held)))[1])
        return body


_encoded = _Encoded(MAX_ENCODED_BYTES)


def encode(series: BarSeries) -> bytes:
    bars = [BarView.of(b) for b in series.bars]
    return msgspec.json.encode(BarsResponse(series.symbol, series.timeframe.value, bars))


async def get_bars(call: Call) -> Response:
    params = call.request.query_params
    symbol = parse_symbol(call.request.path_params["symbol"])
    timeframe = parse_timeframe(params.get("timeframe", Timeframe.MINUTE.value))
    raw_limit = params.get("limit")
    limit = (
        DEFAULT_BARS
        if raw_limit is None
        else parse_int(raw_limit, "limit", minimum=1, maximum=MAX_BARS)
    )
    start, end = time_param(params, "start"), time_param(params, "end")
    series = await call.hub.market_data.bars(symbol, timeframe, start=start, end=end, limit=limit)
    recent = start is None and end is None  # the cached kind of answer
    body = _encoded.get((symbol, timeframe, limit), series) if recent else encode(series)
    return Response(body, media_type="application/json")


TIMEFRAMES = ", ".join(t.value for t in Timeframe)
OPERATIONS: list[Operation] = [
    operation(
        "GET",
        "/api/v1/instruments/{symbol}/bars",
        get_bars,
        "Price history as OHLCV bars, ascending; without `start`, the most recent `limit`",
        response=BarsResponse,
        tags=("market data",),
        errors=(401, 404, 422),
        query=(
            Param(
                "timeframe",
                f"one of {TIMEFRAMES} (default 1Min)",
                schema={"type": "string", "enum": [t.value for t in Timeframe]},
            ),
            Param("start", "first bar's start at or after (RFC 3339 with a zone)"),
            Param("end", "last bar's start at or before (RFC 3339 with a zone)"),
            Param("limit", f"1..{MAX_BARS}, default {DEFAULT_BARS}"),
        ),
    ),
]
