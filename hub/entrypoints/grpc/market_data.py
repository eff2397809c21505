"""MarketDataService: GetMarketData and GetBars (unary), and StreamMarketData (server streaming,
fed by the streaming engine's latest-value channels, so a slow client gets fresh quotes, not a
backlog).

A stream holds one of the engine's per-user connection slots (shared with WebSocket and SSE), and
ends with UNAUTHENTICATED when its access token expires or its login session is revoked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import msgspec
from google.protobuf.timestamp_pb2 import Timestamp

from hub.domain.bars import Timeframe, parse_timeframe
from hub.domain.errors import DependencyUnavailable, HubError, InvalidInput, InvalidToken, NotFound
from hub.entrypoints.grpc._gen import market_data_pb2 as pb
from hub.entrypoints.grpc._gen import market_data_pb2_grpc as pb_grpc
from hub.entrypoints.grpc.auth import bearer
from hub.services.channels import quotes_channel
from hub.services.market_data import DEFAULT_BARS, MarketDataService, parse_symbol, parse_symbols
from hub.services.views import BarView, QuoteView
from streaming import (
    AuthenticationFailed,
    CloseCode,
    Engine,
    Principal,
    Publication,
    StreamingError,
    TooManyConnections,
)

_wire = msgspec.json.Decoder(QuoteView)  # what the feed publishes


def _timestamp(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def quote_message(q: QuoteView) -> pb.Quote:
    return pb.Quote(
        bid=str(q.bid),
        ask=str(q.ask),
        last=str(q.last),
        last_size=str(q.last_size),
        bid_size=str(q.bid_size),
        ask_size=str(q.ask_size),
        open=str(q.open),
        high=str(q.high),
        low=str(q.low),
        prev_close=str(q.prev_close),
        change=str(q.change),
        change_percent=str(q.change_percent),
        timestamp=_timestamp(q.timestamp),
    )


def bar_message(b: BarView) -> pb.Bar:
    return pb.Bar(
        t=_timestamp(b.t),
        o=str(b.o),
        h=str(b.h),
        l=str(b.l),
        c=str(b.c),
        v=str(b.v),
        n=b.n,
        vw=str(b.vw),
    )


# The errors a unary call can meet, by the status each maps to (most specific first).
_STATUS: tuple[tuple[type[HubError], grpc.StatusCode], ...] = (
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (DependencyUnavailable, grpc.StatusCode.UNAVAILABLE),
)


def _instant(ts: Timestamp, field: str) -> datetime:
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{field} is out of range", field=field) from None


@dataclass(frozen=True, slots=True)
class _BarsQuery:
    symbol: str
    timeframe: Timeframe
    start: datetime | None
    end: datetime | None
    limit: int

    @classmethod
    def of(cls, request: pb.GetBarsRequest) -> _BarsQuery:
        """The request's query, as the REST route reads it; InvalidInput when invalid."""
        if request.limit < 0:
            raise InvalidInput("limit must not be negative (0: the default)", field="limit")
        return cls(
            symbol=parse_symbol(request.symbol),
            timeframe=parse_timeframe(request.timeframe or Timeframe.MINUTE.value),
            start=_instant(request.start, "start") if request.HasField("start") else None,
            end=_instant(request.end, "end") if request.HasField("end") else None,
            limit=request.limit or DEFAULT_BARS,
        )


async def _symbols(request_symbols: list[str], context: grpc.aio.ServicerContext) -> list[str]:
    try:
        return parse_symbols(request_symbols)
    except InvalidInput as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.detail)
        raise  # unreachable: abort raises


class MarketDataServicer(pb_grpc.MarketDataServiceServicer):
    def __init__(self, market_data: MarketDataService, engine: Engine) -> None:
        self._market_data = market_data
        self._engine = engine

    async def GetMarketData(
        self, request: pb.GetMarketDataRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMarketDataResponse:
        symbols = await _symbols(list(request.symbols), context)
        found = await self._market_data.market_data(symbols)
        if not found:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown symbols: {', '.join(symbols)}")
        known = {md.instrument.symbol for md in found}
        return pb.GetMarketDataResponse(
            market_data=[
                pb.MarketData(
                    symbol=md.instrument.symbol,
                    name=md.instrument.name,
                    category=md.instrument.category.value,
                    currency=md.instrument.currency,
                    quote=quote_message(QuoteView.of(md.quote)) if md.quote else None,
                )
                for md in found
            ],
            unknown_symbols=[s for s in symbols if s not in known],
        )

    async def GetBars(
        self, request: pb.GetBarsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBarsResponse:
        try:
            q = _BarsQuery.of(request)
            series = await self._market_data.bars(
                q.symbol, q.timeframe, start=q.start, end=q.end, limit=q.limit
            )
        except HubError as exc:
            code = next((c for kind, c in _STATUS if isinstance(exc, kind)), None)
            if code is None:
                raise
            await context.abort(code, exc.detail)
            raise  # unreachable: abort raises
        return pb.GetBarsResponse(
            symbol=series.symbol,
            timeframe=series.timeframe.value,
            bars=[bar_message(BarView.of(b)) for b in series.bars],
        )

    async def StreamMarketData(
        self, request: pb.StreamMarketDataRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.MarketDataUpdate]:
        symbols = await _symbols(list(request.symbols), context)
        known = await self._market_data.instruments(symbols)
        unknown = [s for s in symbols if s not in known]
        if unknown:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown symbols: {', '.join(unknown)}")
        principal = await self._principal(context)
        # One engine subscription per symbol feeds a dict that keeps only the newest
        # publication of each: whatever the client's pace, it is sent the freshest quotes.
        latest: dict[str, Publication] = {}
        wake = asyncio.Event()
        async with AsyncExitStack() as stack:
            try:
                ended = await stack.enter_async_context(self._engine.lease(principal))
            except TooManyConnections:
                limit = self._engine.limits.max_connections_per_principal
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"too many streams for this user: at most {limit} per server, "
                    "WebSocket, SSE and gRPC together",
                )
                raise  # unreachable: abort raises
            ended.add_done_callback(lambda _: wake.set())
            pumps: list[asyncio.Task[None]] = []
            for symbol in symbols:
                subscription = await stack.enter_async_context(
                    self._engine.subscribe(quotes_channel(symbol))
                )
                pumps.append(asyncio.create_task(_pump(symbol, subscription, latest, wake)))
            try:
                while True:
                    await wake.wait()
                    wake.clear()
                    if ended.done():
                        code, reason = ended.result()
                        if code in (CloseCode.TOKEN_EXPIRED, CloseCode.SESSION_REVOKED):
                            await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
                        return  # the engine is shutting down
                    if not latest:  # every pump ended: the engine is shutting down
                        if all(p.done() for p in pumps):
                            return
                        continue
                    pending = list(latest.items())
                    latest.clear()
                    for symbol, publication in pending:
                        yield pb.MarketDataUpdate(
                            symbol=symbol,
                            quote=quote_message(_wire.decode(publication.data)),
                            seq=publication.seq,
                        )
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        # The interceptor verified the token; the engine also knows its expiry, its session and
        # whether that was revoked.
        try:
            return await self._engine.authenticate(bearer(context.invocation_metadata()))
        except (AuthenticationFailed, InvalidToken) as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc) or "invalid token")
            raise  # unreachable: abort raises


async def _pump(
    symbol: str,
    subscription: AsyncIterator[Publication],
    latest: dict[str, Publication],
    wake: asyncio.Event,
) -> None:
    try:
        async for publication in subscription:
            latest[symbol] = publication
            wake.set()
    except StreamingError:
        pass
    finally:
        wake.set()
