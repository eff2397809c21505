"""alpaca-py, unchanged, against `hub serve` (embedded, and in services mode with separate worker
and feed processes): TradingClient, StockHistoricalDataClient, and the two streams, TradingStream
(which must see the fill and the cancel of orders placed through TradingClient) and
StockDataStream (quotes and trades). The test makes no HTTP call of its own but the one that
makes the API key: everything else goes through the SDK, whose models check every answer.

The SDK's streams run their own event loop (`run()`); each runs in a thread here and is stopped
once it has seen what it should, or when its deadline passes, so the test never hangs."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from alpaca.data.models import Bar, BarSet, Quote, Trade
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    AccountStatus,
    OrderSide,
    OrderStatus,
    QueryOrderStatus,
    TimeInForce,
)
from alpaca.trading.models import Asset, Clock, Order, TradeAccount, TradeUpdate, Watchlist
from alpaca.trading.requests import (
    CreateWatchlistRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from alpaca.trading.stream import TradingStream

from tests.e2e.server import hub_serve
from tests.e2e.test_order_stream import services

pytestmark = pytest.mark.e2e

PASSWORD = "Str0ng-Enough!"


def api_key(url: str) -> tuple[str, str]:
    """A new user's API key, through Hub's own API (the SDK cannot make one)."""
    email = f"alpaca{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=url, timeout=10) as http:
        r = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        token = r.json()["access_token"]
        r = http.post(
            "/api/v1/api-keys",
            json={"name": "alpaca-py"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        made = r.json()
        return made["key_id"], made["secret"]


def until(client: TradingClient, order_id: uuid.UUID, done: Callable[[Order], bool]) -> Order:
    deadline = time.monotonic() + 15
    while True:
        order = client.get_order_by_id(order_id)
        assert isinstance(order, Order)
        if done(order):
            return order
        assert time.monotonic() < deadline, order
        time.sleep(0.05)


class Seen:
    """What a stream handler received, from the stream's thread; `wait` from the test's."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = threading.Condition()

    async def add(self, item: Any) -> None:
        """The handler (the SDK takes coroutine functions only)."""
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait(self, done: Callable[[list[Any]], bool], timeout: float = 15) -> list[Any]:
        with self._changed:
            assert self._changed.wait_for(lambda: done(self.items), timeout), self.items
            return list(self.items)


class ObservedTradingStream(TradingStream):
    """alpaca-py's TradingStream, noting when Hub confirms `listen` (the SDK has no hook for
    it): orders placed after that are certain to be streamed to it."""

    def __init__(self, key_id: str, secret: str, url: str) -> None:
        super().__init__(key_id, secret, paper=True, url_override=url)
        self.listening = threading.Event()

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("stream") == "listening":
            self.listening.set()
        await super()._dispatch(msg)


@contextmanager
def running(stream: TradingStream | StockDataStream) -> Iterator[None]:
    """The stream's `run()` in a thread, stopped (and its socket closed, so that it does not
    wait out its 5 s receive timeout) on the way out."""
    thread = threading.Thread(target=stream.run, name="alpaca-py stream", daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop: asyncio.AbstractEventLoop | None = stream._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(stream.stop_ws(), loop).result(5)
            asyncio.run_coroutine_threadsafe(stream.close(), loop).result(5)
        thread.join(15)
        assert not thread.is_alive(), "the stream did not stop"


def ws_url(url: str, path: str) -> str:
    return "ws" + url.removeprefix("http") + path


def has(updates: list[TradeUpdate], order_id: uuid.UUID, event: str) -> bool:
    return any(u.order.id == order_id and u.event == event for u in updates)


def trade(url: str, key_id: str, secret: str) -> None:
    client = TradingClient(key_id, secret, paper=True, url_override=url)
    stream = ObservedTradingStream(key_id, secret, ws_url(url, "/stream"))
    updates = Seen()
    stream.subscribe_trade_updates(updates.add)
    with running(stream):
        assert stream.listening.wait(15), "TradingStream never listened"
        bought, resting = trade_rest(client)
        seen = updates.wait(lambda u: has(u, bought.id, "fill") and has(u, resting.id, "canceled"))
    assert all(isinstance(u, TradeUpdate) for u in seen)
    assert [u.event for u in seen if u.order.id == bought.id] == ["pending_new", "new", "fill"]
    fill = next(u for u in seen if u.order.id == bought.id and u.event == "fill")
    assert fill.qty == 2 and fill.position_qty == 2 and fill.execution_id is not None
    assert fill.price is not None and fill.order.filled_avg_price is not None
    assert Decimal(str(fill.price)) == Decimal(fill.order.filled_avg_price)
    events = [u.event for u in seen if u.order.id == resting.id]
    assert events == ["pending_new", "new", "pending_cancel", "canceled"]


def market_data(url: str, key_id: str, secret: str) -> None:
    data = StockHistoricalDataClient(key_id, secret, url_override=url)
    latest = data.get_stock_latest_quote(
        StockLatestQuoteRequest(symbol_or_symbols=["AAPL", "MSFT"])
    )
    assert isinstance(latest, dict) and set(latest) == {"AAPL", "MSFT"}
    assert isinstance(latest["AAPL"], Quote) and latest["AAPL"].bid_price > 0
    assert latest["AAPL"].bid_price <= latest["AAPL"].ask_price
    start = datetime.now(UTC) - timedelta(minutes=30)
    request = StockBarsRequest(
        symbol_or_symbols=["AAPL", "MSFT"], timeframe=TimeFrame.Minute, start=start
    )
    deadline = time.monotonic() + 15
    while True:  # in services mode the feed process writes its first bars a second after start
        bars = data.get_stock_bars(request)
        assert isinstance(bars, BarSet)
        if set(bars.data) == {"AAPL", "MSFT"}:
            break
        assert time.monotonic() < deadline, bars
        time.sleep(0.2)
    newest = bars.data["AAPL"][-1]
    assert isinstance(newest, Bar) and newest.low <= newest.close <= newest.high
    assert newest.timestamp >= start - timedelta(minutes=1)

    stream = StockDataStream(key_id, secret, url_override=ws_url(url, "/v2/iex"))
    quotes, trades = Seen(), Seen()
    stream.subscribe_quotes(quotes.add, "AAPL")
    stream.subscribe_trades(trades.add, "AAPL", "MSFT")
    with running(stream):
        quotes.wait(lambda q: len(q) >= 3)
        trades.wait(lambda t: {x.symbol for x in t} == {"AAPL", "MSFT"})
    assert all(isinstance(q, Quote) and q.symbol == "AAPL" for q in quotes.items)
    assert all(isinstance(t, Trade) and t.size > 0 for t in trades.items)
    stamps = [q.timestamp for q in quotes.items]
    assert stamps == sorted(stamps)


def alpaca_py(url: str) -> None:
    key_id, secret = api_key(url)
    trade(url, key_id, secret)
    market_data(url, key_id, secret)


def trade_rest(client: TradingClient) -> tuple[Order, Order]:
    """The TradingClient calls; answers the market buy (filled) and the limit order (canceled)."""
    account = client.get_account()
    assert isinstance(account, TradeAccount) and account.status is AccountStatus.ACTIVE
    assert account.cash == "100000.00"
    clock = client.get_clock()
    assert isinstance(clock, Clock) and clock.next_open > clock.timestamp
    asset = client.get_asset("AAPL")
    assert isinstance(asset, Asset) and asset.tradable and asset.symbol == "AAPL"

    bought = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert isinstance(bought, Order) and bought.client_order_id
    filled = until(client, bought.id, lambda o: o.status is OrderStatus.FILLED)
    assert filled.filled_qty == "2" and filled.filled_avg_price is not None
    listed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert isinstance(listed, list) and [o.id for o in listed] == [bought.id]
    positions = client.get_all_positions()
    assert isinstance(positions, list)
    assert [(p.symbol, p.qty, p.side.value) for p in positions] == [("AAPL", "2", "long")]

    far = (Decimal(str(filled.filled_avg_price)) * Decimal("0.95")).quantize(Decimal("0.01"))
    resting = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=float(far),
        )
    )
    assert isinstance(resting, Order)
    until(client, resting.id, lambda o: o.status is OrderStatus.NEW)
    client.cancel_order_by_id(resting.id)
    canceled = until(client, resting.id, lambda o: o.status is OrderStatus.CANCELED)
    assert canceled.canceled_at is not None

    made = client.create_watchlist(CreateWatchlistRequest(name="e2e", symbols=["AAPL"]))
    assert isinstance(made, Watchlist)
    wid = made.id
    found = client.get_watchlist_by_id(wid)
    assert isinstance(found, Watchlist) and found.name == "e2e"
    added = client.add_asset_to_watchlist_by_id(wid, "MSFT")
    assert isinstance(added, Watchlist)
    assert [a.symbol for a in added.assets or []] == ["AAPL", "MSFT"]
    removed = client.remove_asset_from_watchlist_by_id(wid, "AAPL")
    assert isinstance(removed, Watchlist) and [a.symbol for a in removed.assets or []] == ["MSFT"]
    every = client.get_watchlists()
    assert isinstance(every, list) and wid in [w.id for w in every]
    client.delete_watchlist_by_id(wid)
    with pytest.raises(APIError) as missing:
        client.get_watchlist_by_id(wid)
    assert missing.value.status_code == 404 and missing.value.code == 40410000
    return bought, resting


def test_embedded() -> None:
    with hub_serve() as server:
        alpaca_py(server.url)


@pytest.mark.integration
def test_services_mode(schema_url: str, redis_url: str, amqp_url: str, amqp_prefix: str) -> None:
    with services(schema_url, redis_url, amqp_url, amqp_prefix) as server:
        alpaca_py(server.url)
