"""Numbers at the edge: one strict, bounded grammar for every quantity, price and page size, and
no input (however odd its digits, size or cursor) ever reaches a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, MutableMapping
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from hub.config import Settings
from hub.domain.errors import InvalidInput, MalformedNumber, NumberOutOfRange
from hub.domain.numeric import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, parse_decimal, parse_int
from hub.entrypoints.http.app import create_app
from hub.entrypoints.http.routing import Call, operation, to_route
from tests.http_suite import assert_problem, bearer, signup

Headers = dict[str, str]

# Each was accepted by Decimal() (or msgspec's Decimal), and the first ones crashed the tick and
# lot rules with decimal.InvalidOperation: a 500 that also dropped the keep-alive connection.
MALFORMED = [
    "1e28",
    "1E+400",
    "1e-2",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1_000",
    "\uff11\uff10",  # full-width 10
    "\u0661",  # Arabic-Indic 1
    "\u00b2",  # superscript 2: str.isdigit() says yes, int() says no
    " 10",
    "10 ",
    "\t10",
    "10\n",
    "",
    "-",
    ".5",
    "5.",
    "1.2.3",
    "0x10",
    "--1",
    "1,5",
]
TOO_BIG = [
    "1" * (MAX_INTEGER_DIGITS + 1),
    "10000000000000000000000000000",  # 1e28, spelled out
    "0." + "0" * MAX_FRACTION_DIGITS + "1",
    "0.000000000000000000000000001",
    "-" + "9" * (MAX_INTEGER_DIGITS + 1),
]
GOOD = {
    "10": Decimal(10),
    "+10": Decimal(10),
    "-1": Decimal(-1),
    "0": Decimal(0),
    "-0": Decimal(0),
    "-0.00": Decimal(0),
    "189.12": Decimal("189.12"),
    "007.50": Decimal("7.50"),
    "9" * MAX_INTEGER_DIGITS: Decimal("9" * MAX_INTEGER_DIGITS),
    "0." + "0" * (MAX_FRACTION_DIGITS - 1) + "1": Decimal("1e-10"),
}


# --- the parsers ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", MALFORMED)
def test_parse_decimal_refuses_anything_but_plain_ascii_decimals(text: str) -> None:
    with pytest.raises(MalformedNumber) as caught:
        parse_decimal(text, "qty")
    assert caught.value.code == "validation_error"
    assert caught.value.extra == {"field": "qty"}


@pytest.mark.parametrize("text", TOO_BIG)
def test_parse_decimal_bounds_magnitude_and_scale(text: str) -> None:
    with pytest.raises(NumberOutOfRange) as caught:
        parse_decimal(text, "limit_price")
    assert caught.value.code == "number_out_of_range"


@pytest.mark.parametrize(("text", "value"), GOOD.items())
def test_parse_decimal_reads_plain_decimals_exactly(text: str, value: Decimal) -> None:
    parsed = parse_decimal(text, "qty")
    assert parsed == value
    assert parsed.as_tuple().exponent == Decimal(text).as_tuple().exponent  # the scale as sent
    assert parsed.is_signed() == (parsed < 0)  # -0 is read as 0


def test_bounded_values_cannot_break_the_tick_and_lot_arithmetic() -> None:
    """The reason for the bounds: any value they let through divides by any step down to QUANTUM
    inside the default 28-digit context."""
    largest = parse_decimal("9" * MAX_INTEGER_DIGITS + "." + "9" * MAX_FRACTION_DIGITS, "x")
    for step in (Decimal("1e-10"), Decimal("0.0001"), Decimal("0.01"), Decimal(1)):
        assert largest % step >= 0 and (largest / step).to_integral_value() > 0
    with pytest.raises(InvalidOperation):
        _ = Decimal("1e28") % Decimal("0.01")  # what used to get through


@pytest.mark.parametrize("text", ["\u00b2", "\uff15", "-1", "+1", " 5", "5 ", "1e2", "", "1.0"])
def test_parse_int_takes_ascii_digits_only(text: str) -> None:
    with pytest.raises(MalformedNumber):
        parse_int(text, "limit", minimum=1, maximum=500)


def test_parse_int_bounds_before_converting() -> None:
    assert parse_int("0042", "limit", minimum=1, maximum=500) == 42
    for text in ("0", "501", "1" * 5000):  # int() itself refuses more than 4300 digits
        with pytest.raises(InvalidInput) as caught:
            parse_int(text, "limit", minimum=1, maximum=500)
        assert not isinstance(caught.value, MalformedNumber)
        assert caught.value.detail == "limit must be a whole number from 1 to 500"


# --- REST and legacy order submits ---------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[TestClient]:
    # raise_server_exceptions (the default): an error escaping to a 500 fails the test loudly.
    with TestClient(create_app(Settings(feed_quotes_per_second=200))) as client:
        yield client


@pytest.fixture
def auth(client: TestClient) -> Headers:
    return bearer(signup(client))


def rest_order(field: str, value: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": "AAPL",
        "side": "buy",
        "type": "stop_limit",
        "qty": "1",
        "limit_price": "100.00",
        "stop_price": "100.00",
    }
    return {**body, field: value}


def no_orders(client: TestClient, auth: Headers) -> None:
    assert client.get("/api/v1/orders?status=all", headers=auth).json()["orders"] == []


@pytest.mark.parametrize("field", ["qty", "limit_price", "stop_price"])
def test_rest_refuses_malformed_numbers_with_422(
    client: TestClient, auth: Headers, field: str
) -> None:
    for value in [*MALFORMED, 1e28, True, [1], {"v": 1}]:
        r = client.post("/api/v1/orders", json=rest_order(field, value), headers=auth)
        body = assert_problem(r, 422, "validation_error")
        assert body["field"] == field, (value, body)
    # A JSON number with an exponent, written as such (json.dumps would write 1e+28 anyway).
    raw = json.dumps(rest_order(field, 0)).replace(f'"{field}": 0', f'"{field}": 1e28').encode()
    assert_problem(
        client.post("/api/v1/orders", content=raw, headers=auth), 422, "validation_error"
    )
    no_orders(client, auth)


@pytest.mark.parametrize("field", ["qty", "limit_price", "stop_price"])
def test_rest_refuses_numbers_out_of_range_with_422(
    client: TestClient, auth: Headers, field: str
) -> None:
    for value in TOO_BIG:
        r = client.post("/api/v1/orders", json=rest_order(field, value), headers=auth)
        assert assert_problem(r, 422, "number_out_of_range")["field"] == field
    no_orders(client, auth)


def test_rest_numbers_at_the_bounds_meet_the_domain_rules(
    client: TestClient, auth: Headers
) -> None:
    """The largest and finest values the grammar admits reach the tick, lot, collar and notional
    rules, which answer with their own codes instead of failing in the arithmetic."""
    huge = "9" * MAX_INTEGER_DIGITS
    finest = "0." + "0" * (MAX_FRACTION_DIGITS - 1) + "1"
    cases = [
        ({"type": "market", "qty": huge}, "max_notional_exceeded"),
        ({"type": "market", "qty": finest}, "invalid_quantity"),
        ({"type": "market", "qty": "-0"}, "invalid_quantity"),
        ({"type": "limit", "qty": "1", "limit_price": f"{huge}.99"}, "price_outside_collar"),
        ({"type": "limit", "qty": huge, "limit_price": f"{huge}.99"}, "price_outside_collar"),
        ({"type": "limit", "qty": "1", "limit_price": finest}, "price_not_on_tick"),
        ({"type": "stop", "qty": "1", "stop_price": f"{huge}.{'9' * 10}"}, "price_not_on_tick"),
    ]
    for fields, code in cases:
        body = {"symbol": "AAPL", "side": "buy", **fields}
        assert_problem(client.post("/api/v1/orders", json=body, headers=auth), 422, code)
    # JSON numbers in the grammar still work as before.
    number: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "type": "market", "qty": 1}
    assert client.post("/api/v1/orders", json=number, headers=auth).status_code == 202


def legacy_order(**fields: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "order_type": "MARKET", "order_side": "BUY", "quantity": 1, **fields}


def legacy_history_total(client: TestClient, auth: Headers) -> int:
    total: int = client.get("/orders/history", headers=auth).json()["total"]
    return total


def test_legacy_refuses_malformed_numbers_with_400(client: TestClient, auth: Headers) -> None:
    for value in MALFORMED:
        for fields in ({"quantity": value}, {"order_type": "LIMIT", "price": value}):
            body = assert_problem(
                client.post("/orders", json=legacy_order(**fields), headers=auth),
                400,
                "validation_error",
            )
            assert body["error"] == "Validation Error" and body["message"] == body["detail"]
    raw = b'{"symbol": "AAPL", "order_type": "MARKET", "order_side": "BUY", "quantity": 1e28}'
    assert_problem(client.post("/orders", content=raw, headers=auth), 400, "validation_error")
    assert legacy_history_total(client, auth) == 0


def test_legacy_refuses_numbers_out_of_range_with_422(client: TestClient, auth: Headers) -> None:
    for value in TOO_BIG:
        for fields in ({"quantity": value}, {"order_type": "LIMIT", "price": value}):
            r = client.post("/orders", json=legacy_order(**fields), headers=auth)
            body = assert_problem(r, 422, "number_out_of_range")
            assert body["error"] == "Number out of range" and body["message"] == body["detail"]
    assert legacy_history_total(client, auth) == 0


# --- integer query parameters and Content-Length ----------------------------------------------


@pytest.mark.parametrize("value", ["\u00b2", "\uff15", "\u0661", "1" * 5000, "-1", " 5", "5.0"])
def test_integer_query_params_are_ascii_and_bounded(
    client: TestClient, auth: Headers, value: str
) -> None:
    for path in ("/api/v1/orders", "/api/v1/instruments"):
        r = client.get(path, params={"limit": value}, headers=auth)
        assert assert_problem(r, 422, "validation_error")["field"] == "limit"
    for name in ("page", "limit"):
        r = client.get("/orders/history", params={name: value}, headers=auth)
        assert_problem(r, 400, "validation_error")
    assert client.get("/orders/history?page=1000000", headers=auth).status_code == 200
    assert_problem(
        client.get("/orders/history?page=1000001", headers=auth), 400, "validation_error"
    )


def call_asgi(
    client: TestClient, path: str, headers: list[tuple[bytes, bytes]], body: Iterator[bytes]
) -> tuple[int, dict[str, Any], int]:
    """POST straight into the app (httpx refuses non-ASCII header values); the status, the
    JSON answer, and how many body chunks the app pulled."""
    pulled = 0
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        nonlocal pulled
        chunk = next(body, None)
        if chunk is None:
            return {"type": "http.disconnect"}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run() -> None:
        await client.app(scope, receive, send)

    assert client.portal is not None
    client.portal.call(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(content), pulled


def forever(chunk: bytes) -> Iterator[bytes]:
    while True:
        yield chunk


LOGIN = "/api/v1/auth/login"


def test_a_content_length_of_non_ascii_digits_is_a_400(client: TestClient) -> None:
    for value in ("\u00b2".encode("latin-1"), b"-1", b"1 0", b""):
        status, body, _ = call_asgi(client, LOGIN, [(b"content-length", value)], iter([b"{}"]))
        assert (status, body["code"]) == (400, "bad_request"), value


def test_a_huge_content_length_is_a_413_without_reading(client: TestClient) -> None:
    for value in (b"65537", b"9" * 5000):
        status, body, pulled = call_asgi(
            client, LOGIN, [(b"content-length", value)], forever(b"x" * 1024)
        )
        assert (status, body["code"], pulled) == (413, "payload_too_large", 0)


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(client: TestClient) -> None:
    """No Content-Length (chunked transfer): the body is counted while it streams, and the
    413 comes as soon as it passes the limit, not after buffering all of it (here: never)."""
    limit, chunk = Settings().max_body_bytes, 4096
    for path in (LOGIN, "/login"):  # REST and legacy bodies share read_body
        status, body, pulled = call_asgi(client, path, [], forever(b" " * chunk))
        assert (status, body["code"]) == (413, "payload_too_large")
        assert pulled == limit // chunk + 1


# --- the orders cursor --------------------------------------------------------------------------


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_a_cursor_with_a_naive_or_impossible_time_is_a_422(
    client: TestClient, auth: Headers
) -> None:
    body = {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "1"}
    assert client.post("/api/v1/orders", json=body, headers=auth).status_code == 202
    oid = "00000000-0000-0000-0000-000000000000"
    for raw in (
        cursor(f"2026-01-01T00:00:00|{oid}"),  # naive: compared with aware times, a TypeError
        cursor(f"0001-01-01T00:00:00+23:59|{oid}"),  # before year 1 in UTC
        cursor("2026-01-01T00:00:00+00:00|not-a-uuid"),
        cursor("\u00b2"),
        "%%%",
        "\u00b2",
    ):
        r = client.get("/api/v1/orders", params={"status": "all", "cursor": raw}, headers=auth)
        assert assert_problem(r, 422, "validation_error")["field"] == "cursor"
    for name in ("after", "until"):
        for value in ("2026-01-01T00:00:00", "0001-01-01T00:00:00+23:59"):
            r = client.get("/api/v1/orders", params={name: value}, headers=auth)
            assert assert_problem(r, 422, "validation_error")["field"] == name
    # A cursor the API wrote still pages.
    page = client.get("/api/v1/orders?status=all&limit=1", headers=auth).json()
    assert page["next_cursor"] is None and len(page["orders"]) == 1


# --- the safety net: an ArithmeticError that still escapes is a 422, never a 500 ----------------


async def _overflowing(call: Call) -> Any:
    return Decimal("1e28") % Decimal("0.01")


def test_an_operation_that_overflows_answers_422() -> None:
    app = Starlette(routes=[to_route(operation("GET", "/boom", _overflowing, "x", auth=False))])
    app.state.hub = None
    with TestClient(app) as client:
        for _ in range(2):  # and the connection is still usable
            assert_problem(client.get("/boom"), 422, "number_out_of_range")


async def _overflowing_route(request: Request) -> Response:
    raise InvalidOperation("a variant no parser foresaw")


def test_any_route_that_overflows_answers_422() -> None:
    app = create_app(Settings(feed_in_process=False))
    app.router.routes.insert(0, Route("/boom", _overflowing_route))
    with TestClient(app) as client:
        assert_problem(client.get("/boom"), 422, "number_out_of_range")
