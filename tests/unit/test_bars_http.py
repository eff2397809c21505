"""Bars over REST and WebSocket, embedded wiring: GET /api/v1/instruments/{symbol}/bars (shape,
limits, ranges, every problem, the cache hit and its invalidation) and the live `bars:<SYMBOL>`
channel carrying the forming minute."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from hub.bootstrap import DEMO_EMAIL, DEMO_PASSWORD, Container
from hub.config import Settings
from hub.entrypoints.http.app import create_app
from tests.http_suite import assert_problem, bearer, signup
from tests.unit.streaming.support import client as ws_client
from tests.unit.streaming.support import serve_app

BAR_FIELDS = {"t", "o", "h", "l", "c", "v", "n", "vw"}
SETTINGS = Settings(
    admin_emails=frozenset({"admin@example.com"}),
    feed_quotes_per_second=200,
    backfill_minute_days=1,  # a small history: one session of minutes, a week of days
    backfill_daily_days=5,
    login_limit_per_client=1000,
    register_limit_per_client=1000,
)
PATH = "/api/v1/instruments/{}/bars"


def ready(client: TestClient) -> None:
    deadline = time.monotonic() + 20
    while client.get("/readyz").status_code != 200:  # the history loads in the background
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.05)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(SETTINGS)) as c:
        ready(c)
        yield c


@pytest.fixture(scope="module")
def auth(client: TestClient) -> dict[str, str]:
    return bearer(signup(client))


def get(client: TestClient, auth: dict[str, str], symbol: str = "AAPL", **params: Any) -> Any:
    return client.get(PATH.format(symbol), params=params, headers=auth)


def instant(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


def rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_the_answer_is_alpacas_shape_ascending(client: TestClient, auth: dict[str, str]) -> None:
    deadline = time.monotonic() + 5
    while True:  # the newest bar is the minute forming now, once the feed has written it
        r = get(client, auth, "aapl")
        newest = instant(r.json()["bars"][-1]["t"])
        if datetime.now(UTC) - newest < timedelta(minutes=1, seconds=5):
            break
        assert time.monotonic() < deadline, newest
        time.sleep(0.2)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"symbol", "timeframe", "bars"}
    assert (body["symbol"], body["timeframe"]) == ("AAPL", "1Min")
    bars = body["bars"]
    assert len(bars) == 100  # the default limit
    times = [instant(b["t"]) for b in bars]
    assert times == sorted(set(times)) and all(t.second == 0 for t in times)
    for b in bars:
        assert set(b) == BAR_FIELDS
        o, h, low, c, v, vw = (Decimal(b[k]) for k in ("o", "h", "l", "c", "v", "vw"))
        assert all(isinstance(b[k], str) for k in ("o", "h", "l", "c", "v", "vw"))
        assert isinstance(b["n"], int) and b["n"] >= 0
        assert low <= min(o, c) <= max(o, c) <= h
        assert v >= 0 and -vw.as_tuple().exponent <= 4  # type: ignore[operator]
        assert low - Decimal("0.0001") <= vw <= h + Decimal("0.0001")


@pytest.mark.parametrize(
    ("timeframe", "seconds"), [("5Min", 300), ("15Min", 900), ("1Hour", 3600), ("1Day", 82800)]
)
def test_every_timeframe(
    client: TestClient, auth: dict[str, str], timeframe: str, seconds: int
) -> None:
    body = get(client, auth, timeframe=timeframe, limit=4).json()
    assert body["timeframe"] == timeframe and len(body["bars"]) == 4
    times = [instant(b["t"]).timestamp() for b in body["bars"]]
    assert all(b - a >= seconds for a, b in pairwise(times))


def test_limits_and_ranges(client: TestClient, auth: dict[str, str]) -> None:
    history = get(client, auth, limit=60).json()["bars"]
    (newest,) = get(client, auth, limit=1).json()["bars"]  # the most recent
    assert newest["t"] >= history[-1]["t"]
    many = get(client, auth, limit=10000).json()["bars"]
    assert 390 < len(many) <= 10000
    by_time = {b["t"]: b for b in many}
    assert all(by_time[b["t"]] == b for b in history[:-1])  # closed bars never change
    start, end = history[10]["t"], history[20]["t"]
    assert get(client, auth, start=start, end=end).json()["bars"] == history[10:21]  # inclusive
    assert get(client, auth, start=start, limit=3).json()["bars"] == history[10:13]
    assert get(client, auth, end=end, limit=3).json()["bars"] == history[18:21]
    shifted = instant(start).astimezone(timezone(timedelta(hours=2)))  # another zone
    assert get(client, auth, start=shifted.isoformat(), limit=1).json()["bars"] == [history[10]]
    future = rfc3339(datetime.now(UTC) + timedelta(days=1))
    assert get(client, auth, start=future).json()["bars"] == []


def test_every_problem(client: TestClient, auth: dict[str, str]) -> None:
    now = datetime.now(UTC)
    for params, field in [
        ({"timeframe": "2Min"}, "timeframe"),
        ({"timeframe": "1min"}, "timeframe"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-03-06T14:30:00"}, "start"),  # no zone
        ({"end": "0001-01-01T00:00:00+01:00"}, "end"),  # before year 1 in UTC
        ({"start": rfc3339(now), "end": rfc3339(now - timedelta(minutes=1))}, "start"),
    ]:
        body = assert_problem(get(client, auth, **params), 422, "validation_error")
        assert body["field"] == field, (params, body)
    for bad in ("AA PL", "AAPL,MSFT", "X" * 16):
        assert_problem(get(client, auth, bad), 422, "validation_error")
    assert_problem(get(client, auth, "NOPE"), 404, "not_found")
    assert_problem(client.get(PATH.format("AAPL")), 401, "invalid_token")


def test_a_cache_hit_is_the_same_answer_until_it_expires_or_is_invalidated(
    client: TestClient, auth: dict[str, str]
) -> None:
    container: Container = client.app.state.hub  # type: ignore[attr-defined]

    def counts() -> tuple[int, int]:
        stats = container.market_data.stats()
        return stats["bars_hits"], stats["bars_misses"]

    first = get(client, auth, "MSFT", limit=7)
    hits, misses = counts()
    second = get(client, auth, "MSFT", limit=7)
    assert second.content == first.content  # the same bytes, not read or encoded again
    assert counts() == (hits + 1, misses)
    get(client, auth, "MSFT", limit=8)  # another limit: another entry
    assert counts() == (hits + 1, misses + 1)
    # A range is read from the store, not cached.
    get(client, auth, "MSFT", end=rfc3339(datetime.now(UTC)), limit=7)
    assert counts() == (hits + 1, misses + 1)

    admin = bearer(signup(client, "admin@example.com"))
    r = client.post("/api/v1/admin/market-data/cache/invalidate?symbols=MSFT", headers=admin)
    assert r.status_code == 200
    get(client, auth, "MSFT", limit=7)
    assert counts() == (hits + 1, misses + 2)

    # Held for a second at most: then read again, with the feed's newer snapshots.
    time.sleep(1.1)
    get(client, auth, "MSFT", limit=7)
    assert counts() == (hits + 1, misses + 3)
    deadline = time.monotonic() + 5
    while get(client, auth, "MSFT", limit=7).json()["bars"][-1] == first.json()["bars"][-1]:
        assert time.monotonic() < deadline, "the forming bar never moved"
        time.sleep(0.3)


async def test_the_bars_channel_carries_the_forming_minute() -> None:
    app = create_app(SETTINGS)
    async with serve_app(app, lifespan="on") as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            login = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
            token = (await http.post("/api/v1/auth/login", json=login)).json()["access_token"]
        async with ws_client(address, token) as ws:
            await ws.send({"action": "subscribe", "channels": ["bars:AAPL", "bars:NOPE"]})
            error = await ws.expect("error")
            assert (error["code"], error["channel"]) == ("forbidden", "bars:NOPE")
            subscribed = await ws.expect("subscribed")
            assert (subscribed["channel"], subscribed["kind"]) == ("bars:AAPL", "latest")
            seen = [await ws.expect("bar", within=10) for _ in range(2)]
    for message in seen:
        assert message["channel"] == "bars:AAPL" and isinstance(message["seq"], int)
        bar = message["data"]
        assert set(bar) == {"symbol", "timeframe", *BAR_FIELDS}
        assert (bar["symbol"], bar["timeframe"]) == ("AAPL", "1Min")
        t = instant(bar["t"])
        assert t.second == 0 and datetime.now(UTC) - t < timedelta(minutes=1, seconds=5)
        assert Decimal(bar["l"]) <= Decimal(bar["c"]) <= Decimal(bar["h"])
        assert isinstance(bar["n"], int) and Decimal(bar["vw"]) > 0
    first, second = (m["data"] for m in seen)
    assert second["t"] > first["t"] or (second["n"], second["v"]) != (first["n"], first["v"])
