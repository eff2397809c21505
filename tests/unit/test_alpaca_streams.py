"""Alpaca's streams as a client meets them: /stream (trade_updates, JSON in binary frames) and
/v2/iex, /v2/sip (market data, msgpack or JSON): the handshakes, Alpaca's error codes, what each
event carries (checked by alpaca-py's own decoding), replay with `since`, and revocation."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from alpaca.data.live.stock import StockDataStream
from alpaca.data.models import Quote, Trade
from alpaca.trading.models import TradeUpdate
from alpaca.trading.stream import TradingStream
from starlette.testclient import TestClient, WebSocketTestSession

from streaming import Limits
from tests.alpaca_world import buy, embedded, key_headers, resting_limit, wait_for
from tests.http_suite import bearer, signup

MSGPACK = {"content-type": "application/msgpack"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with embedded() as c:
        yield c


def auth_frame(headers: dict[str, str]) -> str:
    key, secret = headers["APCA-API-KEY-ID"], headers["APCA-API-SECRET-KEY"]
    return json.dumps({"action": "authenticate", "data": {"key_id": key, "secret_key": secret}})


def frame(ws: WebSocketTestSession) -> dict[str, Any]:
    message = ws.receive()
    assert message["type"] == "websocket.send", message
    assert "bytes" in message, "trade_updates frames are binary, as Alpaca's"
    decoded: dict[str, Any] = json.loads(message["bytes"])
    return decoded


def closed_with(ws: WebSocketTestSession) -> int:
    message = ws.receive()
    assert message["type"] == "websocket.close", message
    code: int = message["code"]
    return code


@contextlib.contextmanager
def listening(
    client: TestClient, headers: dict[str, str], since: int | None = None
) -> Iterator[tuple[WebSocketTestSession, dict[str, Any]]]:
    with client.websocket_connect("/stream") as ws:
        ws.send_text(auth_frame(headers))
        assert frame(ws) == {
            "stream": "authorization",
            "data": {"action": "authenticate", "status": "authorized"},
        }
        data: dict[str, Any] = {"streams": ["trade_updates"]}
        if since is not None:
            data["since"] = since
        ws.send_text(json.dumps({"action": "listen", "data": data}))
        answer = frame(ws)
        assert answer["stream"] == "listening" and answer["data"]["streams"] == ["trade_updates"]
        yield ws, answer["data"]


def updates(ws: WebSocketTestSession, until: str, order_id: str) -> list[TradeUpdate]:
    """Trade updates, parsed as TradingStream parses them, up to `until` of that order."""
    parse = TradingStream("k", "s")._cast
    seen: list[TradeUpdate] = []
    for _ in range(50):
        msg = frame(ws)
        assert msg["stream"] == "trade_updates", msg
        update = parse(msg)
        assert isinstance(update, TradeUpdate)
        seen.append(update)
        if update.event == until and str(update.order.id) == order_id:
            return seen
    raise AssertionError(f"no {until}: {seen}")


# --- /stream ------------------------------------------------------------------------------------


def test_trade_updates_of_a_fill_and_a_cancel(client: TestClient) -> None:
    headers = key_headers(client)
    with listening(client, headers) as (ws, data):
        assert data["seq"] == 0
        filled = buy(client, headers, qty=2)
        seen = updates(ws, "fill", filled["id"])
        assert [u.event for u in seen] == ["pending_new", "new", "fill"]
        fill = seen[-1]
        assert fill.order.status == "filled" and fill.qty == 2 and fill.position_qty == 2
        assert fill.price == float(filled["filled_avg_price"]) and fill.execution_id is not None
        assert fill.timestamp == fill.order.filled_at
        assert seen[0].price is None and seen[0].execution_id is None  # not fills
        resting = resting_limit(client, headers, filled["filled_avg_price"])
        assert client.delete(f"/v2/orders/{resting['id']}", headers=headers).status_code == 204
        seen = updates(ws, "canceled", resting["id"])
        assert [u.event for u in seen] == ["pending_new", "new", "pending_cancel", "canceled"]
        assert seen[-1].order.canceled_at is not None


def test_listen_since_replays_what_was_missed(client: TestClient) -> None:
    headers = key_headers(client)
    with listening(client, headers) as (_, data):
        last = data["seq"]
    filled = buy(client, headers)  # while no stream listens
    with listening(client, headers, since=last) as (ws, data):
        assert data["recovered"] is True and data["seq"] == last + 3
        seen = updates(ws, "fill", filled["id"])
        assert [u.event for u in seen] == ["pending_new", "new", "fill"]
    with listening(client, headers, since=data["seq"]) as (ws, data):
        assert data["recovered"] is True  # nothing missed: nothing replayed
        ws.send_text(json.dumps({"action": "listen", "data": {"streams": []}}))
        assert frame(ws)["data"]["streams"] == []


def test_older_auth_frame_and_access_tokens(client: TestClient) -> None:
    tokens = signup(client)
    headers = key_headers(client, tokens)
    key, secret = headers["APCA-API-KEY-ID"], headers["APCA-API-SECRET-KEY"]
    older = {"action": "auth", "key": key, "secret": secret}
    oauth = {"action": "authenticate", "data": {"oauth_token": tokens["access_token"]}}
    for first in (older, oauth):
        with client.websocket_connect("/stream") as ws:
            ws.send_text(json.dumps(first))
            assert frame(ws)["data"]["status"] == "authorized"


@pytest.mark.parametrize(
    "first",
    [
        {"action": "authenticate", "data": {"key_id": "HK" + "A" * 18, "secret_key": "wrong"}},
        {"action": "authenticate", "data": {}},
        {"action": "listen", "data": {"streams": ["trade_updates"]}},
        "not json",
    ],
)
def test_refused_authentication_answers_then_closes(client: TestClient, first: Any) -> None:
    with client.websocket_connect("/stream") as ws:
        ws.send_text(first if isinstance(first, str) else json.dumps(first))
        assert frame(ws) == {
            "stream": "authorization",
            "data": {"action": "authenticate", "status": "unauthorized"},
        }
        assert closed_with(ws) == 4001


def test_protocol_errors_keep_the_stream(client: TestClient) -> None:
    headers = key_headers(client)
    with listening(client, headers) as (ws, _):
        for sent, code in (
            ("{", "invalid_message"),
            ('{"action":"dance"}', "unknown_action"),
            ('{"action":"listen","data":{"streams":"x"}}', "invalid_message"),
            (auth_frame(headers), "already_authenticated"),
        ):
            ws.send_text(sent)
            answer = frame(ws)
            assert answer["stream"] == "error" and answer["data"]["code"] == code
        ws.send_text(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert frame(ws)["data"]["streams"] == ["trade_updates"]


def test_revoking_the_key_ends_its_streams(client: TestClient) -> None:
    tokens = signup(client)
    headers = key_headers(client, tokens)
    keys = client.get("/api/v1/api-keys", headers=bearer(tokens)).json()
    with listening(client, headers) as (ws, _):
        r = client.delete(f"/api/v1/api-keys/{keys[0]['id']}", headers=bearer(tokens))
        assert r.status_code == 204
        assert closed_with(ws) == 4005
    with client.websocket_connect("/stream") as ws:  # and it opens no other
        ws.send_text(auth_frame(headers))
        assert frame(ws)["data"]["status"] == "unauthorized"


def test_the_per_user_connection_limit_applies(client: TestClient) -> None:
    headers = key_headers(client)
    limit = client.app.state.hub.engine.limits.max_connections_per_principal  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        for _ in range(limit):
            stack.enter_context(listening(client, headers))
        with client.websocket_connect("/stream") as ws:
            ws.send_text(auth_frame(headers))
            answer = frame(ws)
            assert answer["data"]["status"] == "unauthorized"
            assert "too many connections" in answer["data"]["message"]
            assert closed_with(ws) == 4029


# --- /v2/iex and /v2/sip ------------------------------------------------------------------------


def data(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    message = ws.receive()
    assert message["type"] == "websocket.send", message
    decoded: list[dict[str, Any]] = msgpack.unpackb(message["bytes"])
    return decoded


def control(ws: WebSocketTestSession) -> dict[str, Any]:
    """The next control message (data already on its way may come first)."""
    for _ in range(100):
        (first, *rest) = data(ws)
        if first["T"] in ("error", "subscription", "success"):
            assert not rest, "control messages come one per frame"
            return first
    raise AssertionError("no control message")


def market_auth(headers: dict[str, str]) -> bytes:
    key, secret = headers["APCA-API-KEY-ID"], headers["APCA-API-SECRET-KEY"]
    packed: bytes = msgpack.packb({"action": "auth", "key": key, "secret": secret})
    return packed


@contextlib.contextmanager
def market(
    client: TestClient, headers: dict[str, str], path: str = "/v2/iex"
) -> Iterator[WebSocketTestSession]:
    with client.websocket_connect(path, headers=MSGPACK) as ws:
        assert data(ws) == [{"T": "success", "msg": "connected"}]
        ws.send_bytes(market_auth(headers))
        assert data(ws) == [{"T": "success", "msg": "authenticated"}]
        yield ws


def subscribe(ws: WebSocketTestSession, **channels: list[str]) -> dict[str, Any]:
    ws.send_bytes(msgpack.packb({"action": "subscribe", **channels}))
    (answer,) = data(ws)
    assert answer["T"] == "subscription", answer
    return answer


def test_quotes_and_trades_as_stock_data_stream_reads_them(client: TestClient) -> None:
    cast = StockDataStream("k", "s")._cast
    with market(client, key_headers(client), "/v2/sip") as ws:
        answer = subscribe(ws, quotes=["AAPL", "NOPE"], trades=["aapl"])
        assert answer["quotes"] == ["AAPL"] and answer["trades"] == ["AAPL"]
        assert answer["corrections"] == ["AAPL"] and answer["bars"] == []
        kinds: set[str] = set()
        for _ in range(50):
            for msg in data(ws):
                assert msg["S"] == "AAPL" and msg["x" if msg["T"] == "t" else "ax"] == "V"
                assert type(msg["t"]).__name__ == "Timestamp"  # msgpack's ext type -1
                parsed = cast(msg)
                assert isinstance(parsed, Quote if msg["T"] == "q" else Trade)
                kinds.add(msg["T"])
            if kinds == {"q", "t"}:
                break
        assert kinds == {"q", "t"}
        ws.send_bytes(msgpack.packb({"action": "unsubscribe", "quotes": ["AAPL"]}))
        answer = control(ws)
        assert answer["T"] == "subscription"
        assert answer["quotes"] == [] and answer["trades"] == ["AAPL"]


def test_data_stream_errors(client: TestClient) -> None:
    headers = key_headers(client)
    with client.websocket_connect("/v2/iex", headers=MSGPACK) as ws:
        data(ws)
        ws.send_bytes(msgpack.packb({"action": "subscribe", "quotes": ["AAPL"]}))
        assert data(ws) == [{"T": "error", "code": 401, "msg": "not authenticated"}]
        ws.send_bytes(b"\xc1")  # never valid msgpack
        assert data(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        ws.send_bytes(msgpack.packb({"action": "auth", "key": "HK" + "A" * 18, "secret": "no"}))
        assert data(ws) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        assert closed_with(ws) == 4001
    with market(client, headers) as ws:
        ws.send_bytes(market_auth(headers))
        assert data(ws) == [{"T": "error", "code": 403, "msg": "already authenticated"}]
        ws.send_bytes(msgpack.packb({"action": "subscribe", "dailyBars": ["AAPL"]}))
        (error,) = data(ws)
        assert error["code"] == 410 and "dailyBars" in error["msg"]
        subscribe(ws)
        ws.send_bytes(msgpack.packb({"action": "subscribe", "quotes": ["*"], "bars": ["*"]}))
        answer = data(ws)[0]
        assert answer["T"] == "subscription" and answer["quotes"] == ["*"]


def test_symbol_limit(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = client.app.state.hub.engine  # type: ignore[attr-defined]
    monkeypatch.setattr(engine, "limits", Limits(max_subscriptions=2))
    with market(client, key_headers(client)) as ws:
        subscribe(ws, quotes=["AAPL"], trades=["AAPL"], bars=["AAPL"])  # two channels
        ws.send_bytes(msgpack.packb({"action": "subscribe", "quotes": ["MSFT"]}))
        assert control(ws) == {"T": "error", "code": 405, "msg": "symbol limit exceeded"}


def test_header_auth_and_json_frames(client: TestClient) -> None:
    headers = key_headers(client)
    with client.websocket_connect("/v2/iex", headers=headers) as ws:
        assert json.loads(ws.receive_text()) == [{"T": "success", "msg": "connected"}]
        assert json.loads(ws.receive_text()) == [{"T": "success", "msg": "authenticated"}]
        ws.send_text(json.dumps({"action": "subscribe", "quotes": ["MSFT"]}))
        assert json.loads(ws.receive_text())[0]["T"] == "subscription"
        (quote, *_) = json.loads(ws.receive_text())
        assert quote["T"] == "q" and quote["S"] == "MSFT" and isinstance(quote["bp"], float)
        assert quote["t"].endswith("Z")


def test_auth_timeout(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = client.app.state.hub.engine  # type: ignore[attr-defined]
    monkeypatch.setattr(engine, "limits", Limits(auth_timeout=0.1))
    with client.websocket_connect("/v2/iex", headers=MSGPACK) as ws:
        data(ws)
        assert data(ws) == [{"T": "error", "code": 404, "msg": "auth timeout"}]
        assert closed_with(ws) == 4002
    with client.websocket_connect("/stream") as ws:
        assert frame(ws)["data"]["status"] == "unauthorized"
        assert closed_with(ws) == 4002


def test_a_market_stream_ends_when_its_key_is_revoked(client: TestClient) -> None:
    tokens = signup(client)
    headers = key_headers(client, tokens)
    (key,) = client.get("/api/v1/api-keys", headers=bearer(tokens)).json()
    with market(client, headers) as ws:
        subscribe(ws, quotes=["AAPL"])
        client.delete(f"/api/v1/api-keys/{key['id']}", headers=bearer(tokens))
        for _ in range(200):
            message = ws.receive()
            if message["type"] == "websocket.close":
                assert message["code"] == 4005
                break
        else:
            raise AssertionError("still open")
    with client.websocket_connect("/v2/iex", headers=MSGPACK) as ws:  # and it opens no other
        data(ws)
        ws.send_bytes(market_auth(headers))
        assert data(ws) == [{"T": "error", "code": 402, "msg": "auth failed"}]


def test_an_order_placed_elsewhere_shows(client: TestClient) -> None:
    """An order through /api/v1 is on the same channel: one order path."""
    tokens = signup(client)
    headers = key_headers(client, tokens)
    with listening(client, headers) as (ws, _):
        body = {"symbol": "MSFT", "side": "buy", "type": "market", "qty": "1"}
        r = client.post("/api/v1/orders", json=body, headers=bearer(tokens))
        assert r.status_code == 202, r.text
        wait_for(client, headers, r.json()["id"], "filled")
        (*_, fill) = updates(ws, "fill", r.json()["id"])
        assert fill.order.symbol == "MSFT" and fill.order.client_order_id == r.json()["id"]


def test_a_failing_pump_closes_rather_than_goes_quiet(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("a bug")

    headers = key_headers(client)
    with listening(client, headers) as (ws, _):
        monkeypatch.setattr("hub.entrypoints.http.alpaca.stream.trade_update", broken)
        buy(client, headers)
        assert closed_with(ws) == 1011
