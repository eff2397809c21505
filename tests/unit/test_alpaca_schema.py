"""Every /v2 answer, checked by alpaca-py's own models the way its clients build them: the SDK
is the judge of the shapes (ids are UUIDs, enums are Alpaca's, nothing required is missing).
The market-data answers and the trade_updates events too; the market-data stream's messages are
checked through StockDataStream's own decoding in test_alpaca_data_feed.py and
test_alpaca_streams.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from alpaca.data.historical.utils import parse_obj_as_symbol_dict
from alpaca.data.models import Bar, BarSet, Quote, Snapshot, Trade
from alpaca.trading.models import (
    AccountConfiguration,
    Asset,
    Calendar,
    Clock,
    ClosePositionResponse,
    Order,
    Position,
    TradeAccount,
    TradeActivity,
    TradeUpdate,
    Watchlist,
)
from alpaca.trading.requests import CancelOrderResponse
from alpaca.trading.stream import TradingStream
from pydantic import TypeAdapter
from starlette.testclient import TestClient

from tests.alpaca_world import buy, embedded, key_headers, resting_limit


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[TestClient, dict[str, str], dict[str, Any]]]:
    """One account with a filled buy, a crypto buy and a resting limit order."""
    with embedded() as client:
        headers = key_headers(client)
        filled = buy(client, headers, "AAPL", 3)
        buy(client, headers, "BTC-USD", "0.01")
        resting_limit(client, headers, filled["filled_avg_price"])
        yield client, headers, filled


def ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:  # the history loads in the background
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.05)


def get(world: tuple[Any, ...], path: str) -> Any:
    client, headers = world[0], world[1]
    r = client.get(path, headers=headers)
    assert r.status_code == 200, (path, r.text)
    return r.json()


def many(model: Any, data: Any) -> list[Any]:
    assert isinstance(data, list) and data
    return TypeAdapter(list[model]).validate_python(data)


def test_account_and_configurations(world: Any) -> None:
    account = TradeAccount(**get(world, "/v2/account"))
    assert account.status.value == "ACTIVE" and account.account_number.startswith("PA")
    assert account.cash is not None and "." in account.cash
    AccountConfiguration(**get(world, "/v2/account/configurations"))


def test_clock_and_calendar(world: Any) -> None:
    clock = Clock(**get(world, "/v2/clock"))
    assert clock.next_open > clock.timestamp and clock.next_close > clock.timestamp
    days = many(Calendar, get(world, "/v2/calendar?start=2026-03-02&end=2026-03-06"))
    assert len(days) == 5
    many(Calendar, get(world, "/v2/calendar"))


def test_assets(world: Any) -> None:
    assets = many(Asset, get(world, "/v2/assets"))
    by_symbol = {a.symbol: a for a in assets}
    assert by_symbol["AAPL"].asset_class.value == "us_equity"
    assert by_symbol["BTC-USD"].asset_class.value == "crypto" and by_symbol["BTC-USD"].fractionable
    one = Asset(**get(world, f"/v2/assets/{by_symbol['VOO'].id}"))
    assert one == by_symbol["VOO"] == Asset(**get(world, "/v2/assets/voo"))
    assert Asset(**get(world, "/v2/assets/BTC/USD")).symbol == "BTC-USD"
    crypto = many(Asset, get(world, "/v2/assets?asset_class=crypto&status=active"))
    assert {a.symbol for a in crypto} == {"BTC-USD", "ETH-USD", "SOL-USD"}


def test_orders(world: Any) -> None:
    _, _, filled = world
    order = Order(**filled)
    assert order.status.value == "filled" and order.filled_avg_price is not None
    orders = many(Order, get(world, "/v2/orders?status=all&direction=asc"))
    assert orders[0].id == order.id and len(orders) == 3
    assert Order(**get(world, f"/v2/orders/{order.id}")) == order
    rest = Order(**get(world, "/v2/orders:by_client_order_id?client_order_id=rest-1"))
    assert rest.status.value == "new" and rest.limit_price is not None
    assert [o.id for o in many(Order, get(world, "/v2/orders"))] == [rest.id]  # open


def test_positions(world: Any) -> None:
    positions = many(Position, get(world, "/v2/positions"))
    assert [(p.symbol, p.side.value) for p in positions] == [("AAPL", "long"), ("BTC-USD", "long")]
    aapl = Position(**get(world, "/v2/positions/AAPL"))
    assert aapl.qty == "3" and aapl.exchange.value == "" and aapl.asset_class.value == "us_equity"
    assert Position(**get(world, f"/v2/positions/{aapl.asset_id}")) == aapl


def test_activities(world: Any) -> None:
    fills = many(TradeActivity, get(world, "/v2/account/activities"))
    assert {f.symbol for f in fills} == {"AAPL", "BTC-USD"}
    assert all(f.activity_type.value == "FILL" and f.leaves_qty == 0 for f in fills)
    many(TradeActivity, get(world, "/v2/account/activities/FILL?direction=asc&page_size=5"))
    assert get(world, "/v2/account/activities/DIV") == []


def test_watchlists(world: Any) -> None:
    client, headers, _ = world
    r = client.post("/v2/watchlists", json={"name": "Tech", "symbols": ["AAPL"]}, headers=headers)
    made = Watchlist(**r.json())
    assert [a.symbol for a in made.assets or []] == ["AAPL"]
    wid = made.id
    added = Watchlist(
        **client.post(f"/v2/watchlists/{wid}", json={"symbol": "MSFT"}, headers=headers).json()
    )
    assert [a.symbol for a in added.assets or []] == ["AAPL", "MSFT"]
    updated = client.put(f"/v2/watchlists/{wid}", json={"name": "Chips"}, headers=headers)
    assert Watchlist(**updated.json()).name == "Chips"
    removed = client.delete(f"/v2/watchlists/{wid}/AAPL", headers=headers).json()
    assert [a.symbol for a in Watchlist(**removed).assets or []] == ["MSFT"]
    assert Watchlist(**get(world, f"/v2/watchlists/{wid}")).name == "Chips"
    assert len(many(Watchlist, get(world, "/v2/watchlists"))) == 2  # with the default one
    assert client.delete(f"/v2/watchlists/{wid}", headers=headers).status_code == 204


def test_closing_and_canceling_everything() -> None:
    with embedded() as client:
        headers = key_headers(client)
        filled = buy(client, headers, "AAPL", 4)
        resting_limit(client, headers, filled["filled_avg_price"])
        closed = Order(**client.delete("/v2/positions/AAPL?qty=1", headers=headers).json())
        assert closed.side is not None and closed.side.value == "sell" and closed.qty == "1"
        r = client.delete("/v2/orders", headers=headers)
        assert r.status_code == 207
        (canceled,) = TypeAdapter(list[CancelOrderResponse]).validate_python(r.json())
        assert (
            canceled.status == 200
            and canceled.body
            and canceled.body["status"]
            in (
                "pending_cancel",
                "canceled",
            )
        )
        r = client.delete("/v2/positions", headers=headers)
        assert r.status_code == 207
        results = TypeAdapter(list[ClosePositionResponse]).validate_python(r.json())
        assert [c.symbol for c in results] == ["AAPL"]


# --- market data: REST, and the streams' messages -----------------------------------------------


@pytest.fixture(scope="module")
def market() -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An app with a little price history (a session of minutes, a week of days)."""
    with embedded(backfill_minute_days=1, backfill_daily_days=5) as client:
        ready(client)
        yield client, key_headers(client)


def symbol_dict(model: Any, raw: Any, symbols: set[str]) -> dict[str, Any]:
    parsed = parse_obj_as_symbol_dict(model, raw)
    assert set(parsed) == symbols and all(isinstance(v, model) for v in parsed.values())
    return parsed


def test_latest_quotes_trades_and_bars(market: Any) -> None:
    wanted = "/v2/stocks/{}/latest?symbols=AAPL,BTC/USD,NOPE"
    quotes = symbol_dict(Quote, get(market, wanted.format("quotes"))["quotes"], {"AAPL", "BTC-USD"})
    trades = symbol_dict(Trade, get(market, wanted.format("trades"))["trades"], {"AAPL", "BTC-USD"})
    bars = symbol_dict(Bar, get(market, wanted.format("bars"))["bars"], {"AAPL", "BTC-USD"})
    assert quotes["AAPL"].bid_price < quotes["AAPL"].ask_price
    assert trades["AAPL"].id is not None and trades["AAPL"].exchange == "V"
    assert bars["AAPL"].trade_count is not None
    one = get(market, "/v2/stocks/AAPL/quotes/latest")
    assert one["symbol"] == "AAPL" and Quote("AAPL", one["quote"]).bid_price > 0
    Trade("AAPL", get(market, "/v2/stocks/AAPL/trades/latest")["trade"])
    Bar("AAPL", get(market, "/v2/stocks/AAPL/bars/latest")["bar"])


def test_bars(market: Any) -> None:
    raw = get(market, "/v2/stocks/bars?symbols=MSFT,AAPL&timeframe=1Day&start=2000-01-01&limit=4")
    bars = BarSet(raw["bars"])
    assert set(bars.data) == {"AAPL"} and len(bars.data["AAPL"]) == 4  # symbol order
    assert isinstance(raw["next_page_token"], str)
    one = get(market, "/v2/stocks/AAPL/bars?timeframe=1Hour&start=2000-01-01&limit=2")
    assert one["symbol"] == "AAPL" and len(BarSet({"AAPL": one["bars"]}).data["AAPL"]) == 2


def test_snapshots(market: Any) -> None:
    shots = symbol_dict(
        Snapshot, get(market, "/v2/stocks/snapshots?symbols=AAPL,VOO"), {"AAPL", "VOO"}
    )
    aapl = shots["AAPL"]
    assert aapl.latest_trade and aapl.latest_quote and aapl.minute_bar and aapl.daily_bar
    assert aapl.previous_daily_bar and aapl.previous_daily_bar.timestamp < aapl.daily_bar.timestamp
    one = get(market, "/v2/stocks/VOO/snapshot")
    assert one["symbol"] == "VOO" and Snapshot("VOO", one).latest_quote is not None


def test_every_trade_update(world: Any) -> None:
    """Every event of the account so far, replayed with `since`, parsed as TradingStream does."""
    client, headers, filled = world
    parse = TradingStream("k", "s")._cast
    with client.websocket_connect("/stream") as ws:
        key, secret = headers["APCA-API-KEY-ID"], headers["APCA-API-SECRET-KEY"]
        auth = {"action": "authenticate", "data": {"key_id": key, "secret_key": secret}}
        ws.send_text(json.dumps(auth))
        ws.receive_bytes()
        ws.send_text(
            json.dumps({"action": "listen", "data": {"streams": ["trade_updates"], "since": 0}})
        )
        listening = json.loads(ws.receive_bytes())["data"]
        assert listening["recovered"] is True
        updates: list[TradeUpdate] = []
        for _ in range(listening["seq"]):
            update = parse(json.loads(ws.receive_bytes()))
            assert isinstance(update, TradeUpdate)
            updates.append(update)
    events = [(str(u.order.id), u.event) for u in updates]
    assert (filled["id"], "fill") in events
    fills = [u for u in updates if u.event == "fill"]
    assert len(fills) == 2 and all(u.price and u.qty and u.execution_id for u in fills)
    assert {u.position_qty for u in fills} == {3, 0.01}
