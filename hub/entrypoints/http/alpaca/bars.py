"""GET /v2/stocks/bars and /v2/stocks/{symbol}/bars: price history in Alpaca's paging.

The bars are the ones /api/v1/instruments/{symbol}/bars answers (MarketDataService.bars), in
Alpaca's terms: `timeframe` in Alpaca's spelling (1Min, 5Min, 15Min, 1Hour, 1Day, and the
aliases 1T, 1H, 1D, 60Min...), `start` (default: the start of the current New York day, as
Alpaca's) and `end` (default: now), both inclusive; `limit` counts bars across all symbols
(default 1000, at most 10000); `sort` asc (default) or desc. Several symbols are paged in
symbol order, each symbol's bars in time order.

`next_page_token` is opaque (base64url of the last bar's symbol and time) and stable: the same
request with the same token answers the same page, however many bars were added since, because
a page resumes after a bar, not at an offset.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.responses import Response

from hub.domain.bars import Bar, Timeframe
from hub.domain.errors import InvalidInput
from hub.entrypoints.http.alpaca import params
from hub.entrypoints.http.alpaca.data_shapes import BarOut
from hub.entrypoints.http.alpaca.market_data import answer, check_query
from hub.entrypoints.http.alpaca.routing import route
from hub.entrypoints.http.routing import Call
from hub.services.market_data import MAX_BARS, MarketDataService

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
_STEP = timedelta(microseconds=1)
_TIMEFRAME = re.compile(r"([0-9]{1,4})(Min|T|Minute|Hour|H|Day|D|Week|W|Month|M)")
_MINUTES = {"Min": 1, "T": 1, "Minute": 1, "Hour": 60, "H": 60, "Day": 1440, "D": 1440}
_BY_MINUTES = {
    1: Timeframe.MINUTE,
    5: Timeframe.FIVE_MINUTES,
    15: Timeframe.FIFTEEN_MINUTES,
    60: Timeframe.HOUR,
    1440: Timeframe.DAY,
}


def timeframe(raw: str) -> Timeframe:
    """Alpaca's spelling of a timeframe; InvalidInput for one Hub does not keep."""
    found = _TIMEFRAME.fullmatch(raw.strip())
    minutes = _MINUTES.get(found.group(2)) if found else None
    kept = _BY_MINUTES.get(int(found.group(1)) * minutes) if found and minutes else None
    if kept is None:
        raise InvalidInput(
            f"timeframe {raw[:20]!r} is not supported: Hub keeps 1Min, 5Min, 15Min, 1Hour and "
            "1Day bars",
            field="timeframe",
        )
    return kept


def encode_token(symbol: str, t: datetime) -> str:
    raw = f"{symbol} {t.astimezone(UTC).isoformat()}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> tuple[str, datetime]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        symbol, _, stamp = raw.partition(" ")
        at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("page_token is not a token this API gave", field="page_token") from None
    if at.tzinfo is None or not symbol:
        raise InvalidInput("page_token is not a token this API gave", field="page_token")
    return symbol, at


@dataclass(frozen=True, slots=True)
class BarsQuery:
    symbols: list[str]  # in paging order
    timeframe: Timeframe
    start: datetime
    end: datetime
    limit: int
    descending: bool
    after: tuple[str, datetime] | None  # the last bar of the previous page

    @classmethod
    def of(cls, query: dict[str, str], symbols: list[str], now: datetime) -> BarsQuery:
        check_query(query)
        sort = query.get("sort", "asc").strip().lower() or "asc"
        if sort not in ("asc", "desc"):
            raise InvalidInput("sort must be asc or desc", field="sort")
        start = params.instant(query, "start") or Timeframe.DAY.bucket(now)
        end = params.instant(query, "end") or now
        if start > end:
            raise InvalidInput("start must not be after end", field="start")
        token = query.get("page_token")
        return cls(
            symbols=sorted(symbols),
            timeframe=timeframe(query.get("timeframe", "")),
            start=start,
            end=end,
            limit=params.integer(query, "limit", DEFAULT_LIMIT, MAX_LIMIT),
            descending=sort == "desc",
            after=decode_token(token) if token else None,
        )


async def page(
    market_data: MarketDataService, q: BarsQuery
) -> tuple[dict[str, list[Bar]], str | None]:
    """One page of bars per symbol, and the token of the next page (None: this is the last)."""
    found: dict[str, list[Bar]] = {}
    remaining = q.limit
    for symbol in q.symbols:
        start, end = q.start, q.end
        if q.after is not None:
            after_symbol, after_t = q.after
            if symbol < after_symbol:
                continue
            if symbol == after_symbol:
                if q.descending:
                    end = min(end, after_t - _STEP)
                else:
                    start = max(start, after_t + _STEP)
        if start > end:
            continue
        want = min(remaining + 1, MAX_BARS)  # one more than fits: is there another page?
        if q.descending:  # the newest `want` up to `end`, newest first
            series = await market_data.bars(symbol, q.timeframe, end=end, limit=want)
            bars = [b for b in reversed(series.bars) if b.t >= start]
        else:
            series = await market_data.bars(symbol, q.timeframe, start=start, end=end, limit=want)
            bars = list(series.bars)
        if len(bars) > remaining:
            found[symbol] = bars[:remaining]
            return found, encode_token(symbol, bars[remaining - 1].t)
        if bars:
            found[symbol] = bars
        remaining -= len(bars)
        if remaining == 0:
            if symbol == q.symbols[-1] and len(bars) < want:
                return found, None  # exactly full, and nothing follows
            return found, encode_token(symbol, bars[-1].t)  # the next page may be empty
    return found, None


async def _query(call: Call, symbols: list[str]) -> tuple[dict[str, list[Bar]], str | None]:
    md = call.hub.market_data
    known = await md.instruments(symbols)
    q = BarsQuery.of(
        dict(call.request.query_params), [s for s in symbols if s in known], datetime.now(UTC)
    )
    return await page(md, q)


async def _bars(call: Call) -> Response:
    symbols = params.symbols(call.request.query_params.get("symbols", ""))
    found, token = await _query(call, symbols)
    shaped = {s: [BarOut.of(b) for b in bars] for s, bars in found.items()}
    return answer({"bars": shaped, "next_page_token": token})


async def _symbol_bars(call: Call) -> Response:
    symbol = params.symbol(call.request.path_params["symbol"])
    found, token = await _query(call, [symbol])
    bars = [BarOut.of(b) for b in found.get(symbol, [])]
    return answer({"bars": bars, "symbol": symbol, "next_page_token": token})


ROUTES = [
    route("GET", "/v2/stocks/bars", _bars),
    route("GET", "/v2/stocks/{symbol}/bars", _symbol_bars),
]
