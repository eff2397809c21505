"""The Alpaca-compatible API: the Trading API and the market-data REST under /v2, the
trade_updates stream at /stream and the market-data stream at /v2/iex and /v2/sip. alpaca-py's
TradingClient, StockHistoricalDataClient, TradingStream and StockDataStream work against Hub
unchanged (docs/alpaca.md). Each module is one concept; all of them call the same services as
/api/v1, and the streams ride on the same streaming engine as /ws."""

from __future__ import annotations

from starlette.routing import BaseRoute, WebSocketRoute

from hub.entrypoints.http.alpaca import (
    account,
    activities,
    assets,
    bars,
    clock,
    data_stream,
    market_data,
    orders,
    positions,
    stream,
    watchlists,
)

ROUTES: list[BaseRoute] = [
    WebSocketRoute("/stream", stream.trade_stream),
    WebSocketRoute("/v2/iex", data_stream.data_stream),
    WebSocketRoute("/v2/sip", data_stream.data_stream),
    *account.ROUTES,
    *activities.ROUTES,
    *orders.ROUTES,
    *positions.ROUTES,
    *assets.ROUTES,
    *clock.ROUTES,
    *watchlists.ROUTES,
    *market_data.ROUTES,
    *bars.ROUTES,
]

__all__ = ["ROUTES"]
