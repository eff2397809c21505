"""A small async client of MarketDataService for other services:

async with MarketDataClient("127.0.0.1:50051", token) as client:
    quotes = await client.get_market_data(["AAPL", "MSFT"])
    history = await client.get_bars("AAPL", "5Min", limit=300)
    async for update in client.stream(["AAPL"]):
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType

import grpc

from hub.entrypoints.grpc._gen import market_data_pb2 as pb
from hub.entrypoints.grpc._gen import market_data_pb2_grpc as pb_grpc


class MarketDataClient:
    def __init__(self, target: str, access_token: str, *, timeout: float = 5.0) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = pb_grpc.MarketDataServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._metadata = (("authorization", f"Bearer {access_token}"),)
        self._timeout = timeout

    async def __aenter__(self) -> MarketDataClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def get_market_data(self, symbols: list[str]) -> pb.GetMarketDataResponse:
        response: pb.GetMarketDataResponse = await self._stub.GetMarketData(
            pb.GetMarketDataRequest(symbols=symbols),
            metadata=self._metadata,
            timeout=self._timeout,
        )
        return response

    async def get_bars(
        self,
        symbol: str,
        timeframe: str = "",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 0,
    ) -> pb.GetBarsResponse:
        request = pb.GetBarsRequest(symbol=symbol, timeframe=timeframe, limit=limit)
        if start is not None:
            request.start.FromDatetime(start)
        if end is not None:
            request.end.FromDatetime(end)
        response: pb.GetBarsResponse = await self._stub.GetBars(
            request, metadata=self._metadata, timeout=self._timeout
        )
        return response

    async def stream(self, symbols: list[str]) -> AsyncIterator[pb.MarketDataUpdate]:
        call = self._stub.StreamMarketData(
            pb.StreamMarketDataRequest(symbols=symbols), metadata=self._metadata
        )
        try:
            async for update in call:
                yield update
        finally:
            call.cancel()
