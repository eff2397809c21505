"""The market-data REST under /v2/stocks as a client meets it: Alpaca's timeframe spellings,
paging across symbols with stable opaque tokens, both sort orders, numbers as JSON numbers,
and the errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.domain.bars import Timeframe
from hub.domain.errors import InvalidInput
from hub.entrypoints.http.alpaca.bars import decode_token, timeframe
from tests.alpaca_world import embedded, key_headers
from tests.unit.test_alpaca_schema import ready

BARS = "/v2/stocks/bars"


@pytest.fixture(scope="module")
def market() -> Iterator[tuple[TestClient, dict[str, str]]]:
    with embedded(backfill_minute_days=1, backfill_daily_days=5) as client:
        ready(client)
        yield client, key_headers(client)


def get(market: tuple[TestClient, dict[str, str]], path: str, **params: Any) -> Any:
    client, headers = market
    r = client.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def pages(market: Any, **params: Any) -> list[dict[str, Any]]:
    """Every page of a bars query, following next_page_token."""
    out: list[dict[str, Any]] = []
    token = None
    for _ in range(100):
        page = get(market, BARS, **params, **({"page_token": token} if token else {}))
        out.append(page)
        token = page["next_page_token"]
        if token is None:
            return out
    raise AssertionError("endless paging")


def flat(pages_: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(s, b["t"]) for p in pages_ for s, bars in p["bars"].items() for b in bars]


@pytest.mark.parametrize(
    ("spelling", "kept"),
    [
        ("1Min", Timeframe.MINUTE),
        ("1T", Timeframe.MINUTE),
        ("5Min", Timeframe.FIVE_MINUTES),
        ("15Minute", Timeframe.FIFTEEN_MINUTES),
        ("1Hour", Timeframe.HOUR),
        ("60Min", Timeframe.HOUR),
        ("1H", Timeframe.HOUR),
        ("1Day", Timeframe.DAY),
        ("1D", Timeframe.DAY),
    ],
)
def test_timeframe_spellings(spelling: str, kept: Timeframe) -> None:
    assert timeframe(spelling) is kept


@pytest.mark.parametrize("spelling", ["", "2Min", "1Week", "1Month", "4Hour", "1min", "Min", "x"])
def test_timeframes_hub_does_not_keep(spelling: str) -> None:
    with pytest.raises(InvalidInput, match="1Min, 5Min, 15Min, 1Hour and 1Day"):
        timeframe(spelling)


def test_paging_across_symbols_is_complete_and_stable(market: Any) -> None:
    query = {"symbols": "MSFT,AAPL", "timeframe": "1Day", "start": "2000-01-01"}
    (whole,) = pages(market, **query, limit=1000)
    every = flat([whole])
    assert every[0][0] == "AAPL" and {"AAPL", "MSFT"} == {s for s, _ in every}
    paged = pages(market, **query, limit=3)
    assert flat(paged) == every and all(len(flat([p])) <= 3 for p in paged)
    again = get(market, BARS, **query, limit=3, page_token=paged[0]["next_page_token"])
    assert again == paged[1]  # a token always answers the same page
    symbol, at = decode_token(paged[0]["next_page_token"])
    assert symbol == "AAPL" and at.isoformat().startswith(paged[0]["bars"]["AAPL"][-1]["t"][:10])


def test_descending(market: Any) -> None:
    query = {"symbols": "AAPL", "timeframe": "1Day", "start": "2000-01-01"}
    ascending = flat(pages(market, **query, limit=2))
    descending = flat(pages(market, **query, limit=2, sort="desc"))
    assert descending == list(reversed(ascending)) and len(ascending) >= 4


def test_a_window_and_its_edges(market: Any) -> None:
    (first, second, *_) = get(
        market, "/v2/stocks/AAPL/bars", timeframe="1Hour", start="2000-01-01"
    )["bars"]
    window = get(
        market, "/v2/stocks/AAPL/bars", timeframe="1Hour", start=first["t"], end=second["t"]
    )
    assert [b["t"] for b in window["bars"]] == [first["t"], second["t"]]  # inclusive
    assert window["next_page_token"] is None


def test_numbers_are_json_numbers(market: Any) -> None:
    client, headers = market
    r = client.get("/v2/stocks/AAPL/quotes/latest", headers=headers)
    assert b'"bp":' in r.content and b'"bp":"' not in r.content
    quote = r.json()["quote"]
    assert isinstance(quote["bp"], float) and isinstance(quote["bs"], int)
    text = r.content.decode()
    bp = text.split('"bp":', 1)[1].split(",", 1)[0]
    assert Decimal(bp) == Decimal(str(quote["bp"]))  # Hub's exact digits, not a float's
    day = get(market, "/v2/stocks/AAPL/bars", timeframe="1Day", start="2000-01-01")["bars"][0]
    assert isinstance(day["n"], int) and datetime.fromisoformat(day["t"]).tzinfo is not None


def test_default_start_is_today(market: Any) -> None:
    days = get(market, BARS, symbols="AAPL", timeframe="1Day")["bars"].get("AAPL", [])
    assert len(days) <= 1  # only today's, as Alpaca's default start


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (BARS, {"symbols": "AAPL", "timeframe": "2Min"}, 422),
        (BARS, {"symbols": "AAPL", "timeframe": "1Min", "page_token": "!!"}, 422),
        (BARS, {"symbols": "AAPL", "timeframe": "1Min", "limit": "0"}, 422),
        (BARS, {"symbols": "AAPL", "timeframe": "1Min", "limit": "10001"}, 422),
        (BARS, {"symbols": "AAPL", "timeframe": "1Min", "sort": "up"}, 422),
        (
            BARS,
            {"symbols": "AAPL", "timeframe": "1Min", "start": "2030-01-01", "end": "2029-01-01"},
            422,
        ),
        (BARS, {"timeframe": "1Min"}, 422),
        ("/v2/stocks/quotes/latest", {"symbols": "AAPL", "currency": "EUR"}, 422),
        ("/v2/stocks/NOPE/quotes/latest", {}, 404),
        ("/v2/stocks/NOPE/snapshot", {}, 404),
    ],
)
def test_errors(market: Any, path: str, params: dict[str, str], status: int) -> None:
    client, headers = market
    r = client.get(path, params=params, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["code"] == {404: 40410000, 422: 42210000}[status]


def test_unknown_symbols_are_left_out_and_keys_are_needed(market: Any) -> None:
    client, _ = market
    assert get(market, "/v2/stocks/quotes/latest", symbols="NOPE") == {"quotes": {}}
    assert get(market, BARS, symbols="NOPE", timeframe="1Min") == {
        "bars": {},
        "next_page_token": None,
    }
    assert get(market, "/v2/stocks/snapshots", symbols="NOPE") == {}
    assert client.get("/v2/stocks/quotes/latest?symbols=AAPL").status_code == 401
